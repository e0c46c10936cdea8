#!/usr/bin/env python3
"""Writes a corpus of English-like text for bench_load.sh: DIR/dNN/fileNNN.txt
(and every tenth file as .md with headings), paragraphs of sentences of words
drawn from a Zipf-distributed vocabulary, from a fixed seed, until TOTAL_MB
megabytes (10^6 bytes) are written.

    gen_corpus.py DIR [TOTAL_MB] [FILE_KB]
"""
import os
import random
import sys


def vocabulary(rng, n=20000):
    """Pronounceable made-up words, short ones most common."""
    syllables = ["ka", "ri", "mo", "ten", "la", "vo", "sh", "an", "er", "in", "qu", "el",
                 "or", "ta", "ne", "su", "pa", "di", "go", "ber", "ly", "st", "ch", "ow"]
    common = ("the of and to a in is it you that he was for on are with as his they be at "
              "one have this from or had by word but what some we can out other were all "
              "there when up use your how said an each she which do their time if").split()
    words = list(common)
    seen = set(words)
    while len(words) < n:
        w = "".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def main():
    out = sys.argv[1]
    total = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 100_000_000
    file_bytes = int(sys.argv[3]) * 1000 if len(sys.argv) > 3 else 1_000_000
    rng = random.Random(20240501)
    words = vocabulary(rng)
    weights = [1.0 / (i + 1) for i in range(len(words))]  # Zipf, s = 1
    pool = rng.choices(words, weights, k=1_000_000)  # sampled once, then reused cheaply
    written = 0
    n = 0
    pos = 0
    while written < total:
        is_md = n % 10 == 9
        path = os.path.join(out, f"d{n // 50:02d}", f"file{n:04d}.{'md' if is_md else 'txt'}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        parts = []
        size = 0
        while size < file_bytes and written + size < total:
            sentences = []
            for _ in range(rng.randint(3, 7)):
                k = rng.randint(6, 22)
                if pos + k > len(pool):
                    pos = rng.randint(0, 1000)
                s = " ".join(pool[pos:pos + k])
                pos += k
                sentences.append(s[0].upper() + s[1:] + rng.choice(".....?!"))
            para = " ".join(sentences)
            if is_md and rng.random() < 0.15:
                para = "## " + " ".join(pool[pos:pos + 3]).title() + "\n\n" + para
            parts.append(para)
            size += len(para) + 2
        data = "\n\n".join(parts) + "\n"
        with open(path, "w") as f:
            f.write(data)
        written += len(data.encode())
        n += 1
    print(f"{n} files, {written / 1e6:.1f} MB in {out}")


if __name__ == "__main__":
    main()
