#!/usr/bin/env python3
"""Short passages (12-20 words) or queries (3-7 words) of the Zipf vocabulary
of gen_corpus.py, one per line, from fixed seeds: the data of bench_insert.sh
and bench_scan.sh.

    gen_passages.py N [--json] [--queries]

--json writes {"text": ...} objects, as `archival insert --jsonl -` reads.
"""
import itertools
import json
import random
import sys

from gen_corpus import vocabulary


def main():
    n = int(sys.argv[1])
    as_json, queries = "--json" in sys.argv, "--queries" in sys.argv
    words = vocabulary(random.Random(7))
    # Cumulative weights once: choices() would sum them again on every call.
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))
    rng = random.Random(11 if queries else 7)
    if not queries:
        vocabulary(rng)  # the passages' generator continues where the vocabulary's ended
    lo, hi = (3, 7) if queries else (12, 20)
    out = sys.stdout
    for _ in range(n):
        text = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(lo, hi)))
        if not queries:
            text = text.capitalize() + "."
        out.write((json.dumps({"text": text}) if as_json else text) + "\n")


if __name__ == "__main__":
    main()
