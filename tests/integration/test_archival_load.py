#!/usr/bin/env python3
"""Integration tests of `memgpt archival load`, `memgpt archival reembed` and
`memgpt agents set`: loading a directory tree of .txt, .md, .jsonl, .pdf and
extension-less files, loading twice, files that cannot be read, the summary
line and the terminal progress bar, pdftotext missing, re-embedding with a
second embedder (the mock's embeddings endpoint), resuming a failed
re-embedding, batched embedding requests (counts, retries inside a batch, a
malformed answer storing nothing of its batch), and the validation of
`agents set`.
"""

import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import MEMGPT_BIN, PROVIDER, MemgptTestCase, main  # noqa: E402

SUMMARY = re.compile(
    r"^(?P<files>\d+) files?, (?P<added>\d+) chunks? added, (?P<skipped>\d+) skipped as "
    r"duplicates?, (?P<errors>\d+) errors?, (?P<mb>[\d.]+) MB in (?P<secs>[\d.]+) s "
    r"\((?P<rate>[\d.]+) MB/s\)(?:; (?P<failed>\d+) files? failed)?"
    r"(?:; (?P<ignored>\d+) files? of other types ignored)?$")

# A second embedder served by this run's mock, and the path its requests hit.
SECOND_EMBEDDER = {"openai": ("openai/text-embedding-3-small", "/v1/embeddings"),
                   "ollama": ("ollama/nomic-embed-text", "/api/embed")}.get(PROVIDER)

WORDS = ("river lantern harbour keeper winter ledger the of a quietly sailed biscuit "
         "mountain orchard copper violet").split()


def prose(paragraphs, seed, sentences=5):
    """Deterministic English-like paragraphs separated by blank lines."""
    state = seed
    out = []
    for _ in range(paragraphs):
        sents = []
        for _ in range(sentences):
            state = (state * 1103515245 + 12345) % 2**31
            n = 5 + state % 10
            words = []
            for _ in range(n):
                state = (state * 1103515245 + 12345) % 2**31
                words.append(WORDS[state % len(WORDS)])
            sents.append(" ".join(words).capitalize() + ".")
        out.append(" ".join(sents))
    return "\n\n".join(out) + "\n"


def minimal_pdf(lines):
    """A valid one-page PDF showing `lines` in Helvetica, written by hand:
    catalog, page tree, page, content stream, font, and a byte-exact xref."""
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = ("BT /F1 12 Tf 72 720 Td 14 TL "
               + " ".join(f"({esc(line)}) Tj T*" for line in lines) + " ET")
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


class LoadCase(MemgptTestCase):
    def setUp(self):
        super().setUp()
        self.docs = tempfile.mkdtemp(prefix="memgpt-docs-")
        self.addCleanup(shutil.rmtree, self.docs, True)
        self.run_memgpt("agents", "create", "a", check=0)

    def load(self, *args, check=0, env=None):
        return self.run_memgpt("archival", "load", "--agent", "a", *args, check=check, env=env,
                               timeout=120)

    def summary(self, proc):
        """The one summary line of a non-terminal run, parsed."""
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 1, f"expected one summary line: {proc.stdout!r}")
        m = SUMMARY.match(lines[0])
        self.assertIsNotNone(m, f"not a summary line: {lines[0]!r}")
        return {k: (float(v) if k in ("mb", "secs", "rate") else int(v or 0))
                for k, v in m.groupdict().items()}

    def search(self, query, limit=5):
        out = self.run_memgpt("archival", "search", "--agent", "a", "--json", "--limit", limit,
                              query, check=0).stdout
        return json.loads(out)["results"]

    def passages(self):
        con = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        try:
            return con.execute("SELECT text, source, position, content_hash, embedder, tags "
                               "FROM passages ORDER BY id").fetchall()
        finally:
            con.close()

    def show(self):
        return json.loads(self.run_memgpt("agents", "show", "a", "--json", check=0).stdout)


class LoadTreeTest(LoadCase):
    def make_tree(self):
        d = self.docs
        write(f"{d}/notes.txt", prose(30, 1))
        write(f"{d}/guide.md", "# Orchard guide\n\n" + prose(6, 2) +
              "\n## Copper kettles\n\nThe copper kettle whistles at dawn.\n")
        long_text = prose(20, 3).replace("\n\n", " ")
        write(f"{d}/sub/facts.jsonl", "\n".join([
            json.dumps({"text": "The lighthouse cat is called Biscuit.", "tags": ["cat"]}),
            "",
            json.dumps({"text": "Quarterly revenue grew by four percent.",
                        "time": "2023-10-13"}),
            json.dumps({"text": long_text}),
        ]) + "\n")
        write(f"{d}/sub/deeper/manual.pdf",
              minimal_pdf(["The zeppelin pilot is named Ottoline.",
                           "She flies over Lisbon every Tuesday."]))
        write(f"{d}/README", "Extension-less notes: the violet umbrella is in the attic.\n")
        write(f"{d}/.git/config", "[core]\n\thidden = true\n")
        write(f"{d}/photo.png", b"\x89PNG\r\n\x1a\n\x00\x00")
        return long_text

    def test_tree_loads_once(self):
        if not shutil.which("pdftotext"):
            self.skipTest("pdftotext (poppler-utils) is not installed; `make deps` installs it")
        long_text = self.make_tree()
        proc = self.load(self.docs)
        self.assertEqual(proc.stderr, "")
        s = self.summary(proc)
        self.assertEqual((s["files"], s["errors"], s["failed"], s["skipped"], s["ignored"]),
                         (5, 0, 0, 0, 1))
        rows = self.passages()
        self.assertEqual(len(rows), s["added"])
        self.assertEqual(self.show()["passages"], s["added"])
        self.assertGreater(s["mb"], 0)

        # Every kind was loaded, with its source, and is found by search.
        sources = {os.path.basename(r[1]) for r in rows}
        self.assertEqual(sources, {"notes.txt", "guide.md", "facts.jsonl", "manual.pdf",
                                   "README"})
        self.assertTrue(all(os.path.isabs(r[1]) for r in rows))
        self.assertIn("Ottoline", self.search("zeppelin pilot Ottoline")[0]["text"])
        self.assertIn("violet umbrella", self.search("violet umbrella attic")[0]["text"])
        hit = self.search("lighthouse cat Biscuit")[0]
        self.assertEqual((hit["text"], hit["tags"]),
                         ("The lighthouse cat is called Biscuit.", ["cat"]))
        revenue = [r for r in rows if r[0].startswith("Quarterly revenue")]
        self.assertEqual(len(revenue), 1)
        self.assertIn("copper kettle", self.search("copper kettle whistles")[0]["text"])

        # Text and Markdown positions are byte offsets of the passage in its file.
        for text, source, position, digest, embedder, _ in rows:
            self.assertRegex(digest, r"^[0-9a-f]{64}$")
            self.assertEqual(embedder, "offline")
            if source.endswith((".txt", ".md", "README")):
                with open(source, "rb") as f:
                    raw = f.read()
                self.assertEqual(raw[position:position + len(text.encode())].decode(), text)
        # The long JSON line was chunked; its chunks all point at its line.
        with open(f"{self.docs}/sub/facts.jsonl", "rb") as f:
            line_start = f.read().index(b'{"text": "' + long_text[:20].encode())
        long_rows = [r for r in rows if r[1].endswith("facts.jsonl") and r[2] == line_start]
        self.assertGreater(len(long_rows), 1)
        # Notes are cut at paragraph ends, with chunks under the token budget.
        notes = [r[0] for r in rows if r[1].endswith("notes.txt")]
        self.assertGreater(len(notes), 3)
        self.assertTrue(all(t.endswith(".") for t in notes))

        # Again: nothing new, everything counted as a duplicate.
        again = self.summary(self.load(self.docs))
        self.assertEqual((again["added"], again["skipped"], again["errors"]),
                         (0, s["added"], 0))
        self.assertEqual(len(self.passages()), s["added"])
        self.assertEqual(self.show()["passages"], s["added"])
        # A file given by name, and smaller chunks: only the new chunks are added.
        smaller = self.summary(self.load("--chunk-tokens", "60", "--overlap", "0",
                                         f"{self.docs}/notes.txt"))
        self.assertGreater(smaller["added"], len(notes))
        self.assertEqual(len(self.passages()), s["added"] + smaller["added"])
        self.assertEqual(self.show()["passages"], s["added"] + smaller["added"])
        self.assert_all_requests_valid()

    def test_unreadable_files_are_reported_and_skipped(self):
        d = self.docs
        write(f"{d}/good.txt", "The harbour master keeps a green parrot called Juniper.\n")
        write(f"{d}/program", b"\x7fELF\x02\x01\x01\x00\x00\x00")        # binary, no extension
        write(f"{d}/latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"))  # not UTF-8
        os.symlink(f"{d}/missing-target.txt", f"{d}/gone.txt")           # dangling link
        write(f"{d}/mixed.jsonl", '{"text": "Valid line about the orchard."}\n{oops\n')
        os.mkfifo(f"{d}/fifo")                       # not a file: ignored in a walk,
        os.symlink(f"{d}/fifo", f"{d}/fifo.txt")     # and through a link refused, not waited on
        bad = ["program", "latin1.txt", "gone.txt", "mixed.jsonl:2", "fifo.txt"]
        if os.geteuid() != 0:  # root reads anything: permissions only bite others
            write(f"{d}/locked.txt", "secret")
            os.chmod(f"{d}/locked.txt", 0)
            self.addCleanup(os.chmod, f"{d}/locked.txt", 0o600)
            bad.append("locked.txt")
        proc = self.load(d, check=1)
        errors = proc.stderr.splitlines()
        self.assertEqual(len(errors), len(bad), proc.stderr)
        for name in bad:
            line = [e for e in errors if f"/{name}:" in e]
            self.assertEqual(len(line), 1, f"{name} not reported once: {proc.stderr}")
            self.assertTrue(line[0].startswith("memgpt: "))
        self.assertIn("binary", [e for e in errors if "/program:" in e][0])
        self.assertIn("UTF-8", [e for e in errors if "latin1.txt" in e][0])
        self.assertIn("not a regular file", [e for e in errors if "fifo.txt" in e][0])
        s = self.summary(proc)
        self.assertEqual((s["errors"], s["failed"]), (len(bad), len(bad)))
        self.assertEqual(s["added"], 2)  # good.txt and the valid JSON line
        self.assertIn("Juniper", self.search("green parrot Juniper")[0]["text"])
        self.assertIn("orchard", self.search("orchard valid line")[0]["text"])

        # A missing path and an unsupported file named explicitly: reported too.
        proc = self.load(f"{d}/good.txt", f"{d}/nope", check=1)
        self.assertIn("No such file", proc.stderr)
        write(f"{d}/pic.gif", b"GIF89a")
        proc = self.load(f"{d}/pic.gif", check=1)
        self.assertIn("unsupported file type", proc.stderr)

    def test_pdf_without_pdftotext(self):
        write(f"{self.docs}/a.pdf", minimal_pdf(["Nothing to see."]))
        write(f"{self.docs}/b.txt", "The pdf next to me will fail; I will not.\n")
        empty_bin = tempfile.mkdtemp(prefix="memgpt-nopath-")
        self.addCleanup(shutil.rmtree, empty_bin, True)
        proc = self.load(self.docs, check=1, env={"PATH": empty_bin})
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("a.pdf", proc.stderr)
        self.assertIn("pdftotext", proc.stderr)
        self.assertIn("poppler-utils", proc.stderr)
        s = self.summary(proc)
        self.assertEqual((s["files"], s["added"], s["failed"]), (2, 1, 1))

    def test_broken_pdf(self):
        if not shutil.which("pdftotext"):
            self.skipTest("pdftotext (poppler-utils) is not installed; `make deps` installs it")
        write(f"{self.docs}/broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n")
        proc = self.load(self.docs, check=1)
        self.assertRegex(proc.stderr, r"^memgpt: .*broken\.pdf: pdftotext failed")

    def test_usage_errors(self):
        write(f"{self.docs}/a.txt", "hello there")
        for args in (["--chunk-tokens", "5", self.docs], ["--chunk-tokens", "abc", self.docs],
                     ["--overlap", "200", self.docs], ["--nope", self.docs], []):
            with self.subTest(args=args):
                proc = self.load(*args, check=2)
                self.assertEqual(proc.stdout, "")
                self.assertTrue(proc.stderr.startswith("memgpt: "))
        self.assertEqual(self.passages(), [])

    def test_terminal_progress_bar(self):
        """With stdout on a terminal: a bar with rate and ETA, redrawn at most
        ten times a second, then the summary line."""
        # Long enough for a redraw after the first (a tenth of a second) on
        # a fast machine: about a second here.
        for i in range(6):
            write(f"{self.docs}/part{i}.txt", prose(7000, 10 + i))
        master, slave = pty.openpty()
        started = time.monotonic()
        proc = subprocess.Popen(
            [MEMGPT_BIN, "--home", self.home, "archival", "load", "--agent", "a", "--batch", "1",
             self.docs], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
            env=self.memgpt_env())
        os.close(slave)
        output = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                proc.kill()
                self.fail("no output from the terminal for 60 s")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        proc.wait(timeout=60)
        elapsed = time.monotonic() - started
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
        proc.stderr.close()
        text = output.decode("utf-8", "replace")
        draws = text.count("\r[")
        self.assertGreaterEqual(draws, 1, text)
        self.assertRegex(text, r"\r\[[#.]+\] +\d+%  [\d.]+/[\d.]+ MB  [\d.]+ MB/s  ETA \d+:\d\d")
        self.assertLessEqual(draws, elapsed * 10 + 3, f"{draws} redraws in {elapsed:.2f} s")
        last = text.replace("\r\n", "\n").split("\n")[-2]  # the line after the bar's erasure
        self.assertIsNotNone(SUMMARY.match(last.split("\x1b[K")[-1]), repr(last))


class ReembedTest(LoadCase):
    def setUp(self):
        super().setUp()
        if SECOND_EMBEDDER is None:
            self.skipTest(f"no embeddings endpoint in the {PROVIDER} mock")
        self.spec, self.path = SECOND_EMBEDDER
        write(f"{self.docs}/a.txt", prose(12, 4))
        write(f"{self.docs}/b.txt", "The zeppelin pilot is named Ottoline.\n")
        self.loaded = self.summary(self.load(self.docs))["added"]

    def embed_requests(self):
        return [r for r in self.mock.requests if r["path"] == self.path]

    def embedded_texts(self):
        """Every input of every embeddings request, in order."""
        return [t for r in self.embed_requests() for t in r["body"]["input"]]

    def test_reembed_with_a_new_embedder(self):
        self.assertEqual(self.embed_requests(), [])  # loaded offline
        proc = self.run_memgpt("agents", "set", "a", "--embedder", self.spec, check=0)
        self.assertIn("memgpt archival reembed --agent a", proc.stdout)
        self.assertEqual(self.show()["embedder"], self.spec)
        # Until re-embedded, passages are found by their words only.
        before = self.search("zeppelin pilot Ottoline")
        self.assertIn("Ottoline", before[0]["text"])
        self.assertEqual(before[0]["similarity"], 0)

        proc = self.run_memgpt("archival", "reembed", "--agent", "a", check=0)
        # One batched request (the default batch is 64) + the query embedding
        # of the search above, and every passage embedded exactly once.
        self.assertLess(self.loaded, 64)
        self.assertEqual(len(self.embed_requests()), 2)
        self.assertEqual(len(self.embedded_texts()), self.loaded + 1)
        self.assertRegex(proc.stdout, rf"^re-embedded {self.loaded} of {self.loaded} passages "
                                      rf"with {re.escape(self.spec)}, 0 already current, in ")
        self.assertTrue(all(r[4] == self.spec for r in self.passages()))
        after = self.search("zeppelin pilot Ottoline")
        self.assertIn("Ottoline", after[0]["text"])
        self.assertGreater(after[0]["similarity"], 0)

        # Nothing left to do the second time.
        before_again = len(self.embed_requests())
        proc = self.run_memgpt("archival", "reembed", "--agent", "a", check=0)
        self.assertRegex(proc.stdout, rf"^re-embedded 0 of 0 passages with .*, {self.loaded} "
                                      "already current")
        self.assertEqual(len(self.embed_requests()), before_again)
        self.assert_all_requests_valid()

    def test_reembed_resumes_after_a_failure(self):
        self.run_memgpt("agents", "set", "a", "--embedder", self.spec, check=0)
        self.assertGreater(self.loaded, 2)
        self.mock.push({}, endpoint="embeddings")  # the first batch of 2
        # The second: not retried (a 400 or 413 would be split and retried).
        self.mock.push({"status": 404}, endpoint="embeddings")
        proc = self.run_memgpt("archival", "reembed", "--agent", "a", "--batch", "2", check=1)
        self.assertRegex(proc.stdout, rf"^re-embedded 2 of {self.loaded} passages")
        self.assertTrue(proc.stderr.startswith("memgpt: "), proc.stderr)
        self.assertEqual(sum(r[4] == self.spec for r in self.passages()), 2)
        proc = self.run_memgpt("archival", "reembed", "--agent", "a", "--batch", "2", check=0)
        self.assertRegex(proc.stdout, rf"^re-embedded {self.loaded - 2} of {self.loaded - 2} "
                                      "passages .*, 2 already current")
        self.assertTrue(all(r[4] == self.spec for r in self.passages()))
        # One request per batch of 2: the stored batch, the refused one, then
        # the rest; only the refused batch was embedded twice.
        self.assertEqual(len(self.embed_requests()), 2 + (self.loaded - 2 + 1) // 2)
        self.assertEqual(len(self.embedded_texts()), self.loaded + 2)


    def test_load_stops_when_the_embedder_fails_and_resumes(self):
        self.run_memgpt("agents", "create", "b", "--embedder", self.spec, check=0)
        self.mock.push({}, endpoint="embeddings")  # the first batch of 2
        self.mock.push({"status": 404}, endpoint="embeddings")
        args = ("archival", "load", "--agent", "b", "--batch", "2", self.docs)
        proc = self.run_memgpt(*args, check=1)
        self.assertEqual(self.summary(proc)["added"], 2)  # the batch before the failure
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("embedding passages", proc.stderr)
        again = self.summary(self.run_memgpt(*args, check=0))
        self.assertEqual((again["added"], again["skipped"]), (self.loaded - 2, 2))
        # The rerun embedded only what was missing: 2 requests, then the rest.
        self.assertEqual(len(self.embed_requests()), 2 + (self.loaded - 2 + 1) // 2)
        self.assertEqual(len(self.embedded_texts()), self.loaded + 2)


class BatchedEmbeddingTest(LoadCase):
    """Loading with a network embedder sends passages in batched requests
    ("input" as an array), retries a batch like a chat request, and stores
    nothing of a batch whose answer is malformed."""

    PASSAGES = 23

    def setUp(self):
        super().setUp()
        if SECOND_EMBEDDER is None:
            self.skipTest(f"no embeddings endpoint in the {PROVIDER} mock")
        self.spec, self.path = SECOND_EMBEDDER
        # One passage per JSON line: exactly PASSAGES of them, all different.
        write(f"{self.docs}/facts.jsonl", "".join(
            json.dumps({"text": f"Fact number {i}: the {WORDS[i % len(WORDS)]} is "
                                f"{WORDS[(3 * i) % len(WORDS)]}."}) + "\n"
            for i in range(self.PASSAGES)))

    def embed_requests(self):
        return [r for r in self.mock.requests if r["path"] == self.path]

    def load_into(self, agent, *args, check=0):
        self.run_memgpt("agents", "create", agent, "--embedder", self.spec, check=0)
        return self.run_memgpt("archival", "load", "--agent", agent, *args, self.docs,
                               check=check, timeout=120)

    def stored(self, agent):
        """(passages, passages with the network embedder) of one agent."""
        con = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        try:
            return con.execute(
                "SELECT count(*), count(*) FILTER (WHERE embedder = ?) FROM passages "
                "WHERE agent_id = (SELECT id FROM agents WHERE name = ?)",
                (self.spec, agent)).fetchone()
        finally:
            con.close()

    def answer(self, rows):
        """A 200 body in this provider's embeddings shape holding `rows`."""
        if PROVIDER == "ollama":
            return {"model": self.spec.split("/", 1)[1], "embeddings": rows}
        return {"object": "list", "model": self.spec.split("/", 1)[1],
                "data": [{"object": "embedding", "index": i, "embedding": row}
                         for i, row in enumerate(rows)],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    def test_requests_are_batched(self):
        proc = self.load_into("b")
        self.assertEqual(self.summary(proc)["added"], self.PASSAGES)
        # The default load batch (256) holds every passage: one request.
        reqs = self.embed_requests()
        self.assertEqual(len(reqs), 1)
        self.assertEqual(len(reqs[0]["body"]["input"]), self.PASSAGES)
        self.assertEqual(self.stored("b"), (self.PASSAGES, self.PASSAGES))

        # A load batch of 5: one request per 5 passages, in order, each text once.
        self.mock.reset()
        self.summary(self.load_into("c", "--batch", "5"))
        reqs = self.embed_requests()
        self.assertEqual([len(r["body"]["input"]) for r in reqs], [5, 5, 5, 5, 3])
        texts = [t for r in reqs for t in r["body"]["input"]]
        self.assertEqual(len(set(texts)), self.PASSAGES)
        self.assertTrue(all(t.startswith("Fact number ") for t in texts))
        self.assertEqual(self.stored("c"), (self.PASSAGES, self.PASSAGES))
        self.assert_all_requests_valid()

        # Re-embedding is batched the same way (--batch 10: 10, 10, 3).
        self.mock.reset()
        self.run_memgpt("agents", "set", "c", "--embedder", "offline", check=0)
        self.run_memgpt("archival", "reembed", "--agent", "c", check=0)
        self.run_memgpt("agents", "set", "c", "--embedder", self.spec, check=0)
        self.run_memgpt("archival", "reembed", "--agent", "c", "--batch", "10", check=0)
        self.assertEqual([len(r["body"]["input"]) for r in self.embed_requests()], [10, 10, 3])
        self.assert_all_requests_valid()

    def test_a_batch_is_retried_on_429_and_500(self):
        self.mock.push({"status": 429, "headers": {"Retry-After": "0"}}, endpoint="embeddings")
        self.mock.push({"status": 500}, endpoint="embeddings")
        proc = self.load_into("b", "--batch", "10")
        self.assertEqual(self.summary(proc)["added"], self.PASSAGES)
        statuses = [r["status"] for r in self.embed_requests()]
        # The first batch three times (429, 500, 200), then one request each.
        self.assertEqual(statuses, [429, 500, 200, 200, 200])
        first = [r["body"]["input"] for r in self.embed_requests()[:3]]
        self.assertTrue(first[0] == first[1] == first[2], "a retry must resend the same batch")
        self.assertEqual(self.stored("b"), (self.PASSAGES, self.PASSAGES))

    def test_a_refused_request_size_is_halved(self):
        # A server that takes at most 6 inputs a request: the 23 passages go
        # as 23 (refused), 11 (refused), then requests of 5 for the rest.
        statuses = (413, 400) if PROVIDER == "openai" else (413,)
        for i, status in enumerate(statuses):
            with self.subTest(status=status):
                self.mock.reset()
                self.mock.embedding_input_cap = 6
                self.mock.embedding_cap_status = status
                agent = f"h{i}"
                proc = self.load_into(agent)
                self.mock.embedding_input_cap = None
                self.assertEqual(self.summary(proc)["added"], self.PASSAGES)
                reqs = self.embed_requests()
                self.assertEqual([len(r["body"]["input"]) for r in reqs],
                                 [23, 11, 5, 5, 5, 5, 3])
                self.assertEqual([r["status"] for r in reqs], [status, status] + [200] * 5)
                self.assertEqual(self.stored(agent), (self.PASSAGES, self.PASSAGES))
                self.assert_all_requests_valid()

    def error_body(self, said):
        if PROVIDER == "ollama":
            return {"error": said}
        return {"error": {"message": said, "type": "invalid_request_error", "param": "input",
                          "code": None}}

    def test_a_text_refused_alone_fails_its_batch(self):
        # A 400 about size that no split cures (here: every request refused)
        # halves down to one text, then fails the batch with the server's words.
        said = "input 1 is too long: the maximum is 8192 tokens"
        for _ in range(5):
            self.mock.push({"status": 400, "body": self.error_body(said)}, endpoint="embeddings")
        proc = self.load_into("r", check=1)
        self.assertEqual([len(r["body"]["input"]) for r in self.embed_requests()],
                         [23, 11, 5, 2, 1])
        self.assertIn(said, proc.stderr)
        self.assertIn("text 1 of 23", proc.stderr)
        self.assertEqual(self.stored("r"), (0, 0))

    def test_a_400_about_something_else_is_not_split(self):
        said = "this model does not produce embeddings"
        self.mock.push({"status": 400, "body": self.error_body(said)}, endpoint="embeddings")
        proc = self.load_into("u", check=1)
        self.assertEqual([len(r["body"]["input"]) for r in self.embed_requests()], [23])
        self.assertIn(said, proc.stderr)
        self.assertNotIn("text 1 of", proc.stderr)
        self.assertEqual(self.stored("u"), (0, 0))

    def test_a_malformed_answer_stores_nothing_of_its_batch(self):
        good = [0.5, 0.25, 0.125]
        cases = [
            ("too few rows", [good] * 4, "4 embeddings for 5 inputs"),
            ("too many rows", [good] * 6, "6 embeddings for 5 inputs"),
            ("rows of two sizes", [good] * 4 + [good + [1.0]], "has 4 dimensions"),
            ("a string in a row", [good] * 4 + [[0.5, "x", 0.1]], "not a finite number"),
            ("an empty row", [good] * 2 + [[]] + [good] * 2, "not a list of 1 to"),
        ]
        if PROVIDER == "openai":
            dup = self.answer([good] * 5)
            dup["data"][4]["index"] = 3
            cases.append(("a repeated index", dup, "repeats an index"))
        for i, (what, rows, says) in enumerate(cases):
            with self.subTest(what):
                agent = f"m{i}"
                self.mock.push({}, endpoint="embeddings")  # the first batch of 5 is fine
                body = rows if isinstance(rows, dict) else self.answer(rows)
                self.mock.push({"body": body}, endpoint="embeddings")
                proc = self.load_into(agent, "--batch", "5", check=1)
                self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
                self.assertIn("embedding passages", proc.stderr)
                self.assertIn(says, proc.stderr)
                # Exactly the first batch was stored; nothing of the second.
                self.assertEqual(self.summary(proc)["added"], 5)
                self.assertEqual(self.stored(agent), (5, 5))


class AgentsSetTest(MemgptTestCase):
    def show(self, name="a"):
        return json.loads(self.run_memgpt("agents", "show", name, "--json", check=0).stdout)

    def test_changes_and_validation(self):
        self.run_memgpt("agents", "create", "a", "--context-window", "16000", check=0)
        original = self.show()
        proc = self.run_memgpt("agents", "set", "a", "--step-limit", "5", "--reflect-every",
                               "off", "--idle-seconds", "30", "--warn-fraction", "0.6",
                               "--flush-fraction", "0.9", check=0)
        self.assertEqual(proc.stdout, "updated agent a\n")
        s = self.show()
        self.assertEqual(s["settings"], {"step_limit": 5, "reflect_every": -1,
                                         "idle_seconds": 30, "warn_fraction": 0.6,
                                         "flush_fraction": 0.9})
        self.assertEqual((s["model"], s["context_window"], s["embedder"]),
                         (original["model"], 16000, "offline"))
        self.run_memgpt("agents", "set", "a", "--context-window", "20000", check=0)
        self.assertEqual(self.show()["context_window"], 20000)

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("You are a terse assistant.")
        self.addCleanup(os.unlink, f.name)
        self.run_memgpt("agents", "set", "a", "--system", "@" + f.name, check=0)
        self.assertTrue(self.show()["custom_system_prompt"])
        self.run_memgpt("agents", "set", "a", "--system-default", check=0)
        self.assertFalse(self.show()["custom_system_prompt"])

        before = self.show()
        for args, code, words in [
            (["--context-window", "100"], 2, "at least"),
            (["--context-window", "2100"], 2, "too small"),
            (["--warn-fraction", "0.95"], 2, "warn fraction"),
            (["--warn-fraction", "0.05"], 2, "warn fraction"),
            (["--embedder", "word2vec"], 2, "unknown embedder"),
            (["--model", "nonsense"], 2, "unknown model handle"),
            (["--step-limit", "0"], 2, "step-limit"),
            (["--step-limit", "5000"], 2, "step limit"),
            (["--system", "plain text"], 2, "@FILE"),
            (["--system", "@x", "--system-default"], 2, "conflict"),
            ([], 2, "at least one setting"),
            (["--bogus", "1"], 2, "unknown option"),
        ]:
            with self.subTest(args=args):
                proc = self.run_memgpt("agents", "set", "a", *args, check=code)
                self.assertEqual(proc.stdout, "")
                self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
                self.assertIn(words.lower(), proc.stderr.lower())
        self.assertEqual(self.show(), before)  # nothing changed
        proc = self.run_memgpt("agents", "set", "nobody", "--step-limit", "3", check=1)
        self.assertIn("no agent named", proc.stderr)
        proc = self.run_memgpt("agents", "set", "--step-limit", "3", check=2)
        self.assertIn("NAME", proc.stderr)

    def test_model_change_takes_the_model_window(self):
        self.run_memgpt("agents", "create", "a", "--model", "openai/gpt-4", check=0)
        self.assertEqual(self.show()["context_window"], 8192)
        self.run_memgpt("agents", "set", "a", "--model", "openai/gpt-4o", check=0)
        s = self.show()
        self.assertEqual((s["model"], s["context_window"]), ("openai/gpt-4o", 128000))
        self.run_memgpt("agents", "set", "a", "--model", "openai/gpt-4", "--context-window",
                        "4096", check=0)
        self.assertEqual(self.show()["context_window"], 4096)
        # Unknown models keep the window they had.
        self.run_memgpt("agents", "set", "a", "--model", "openai/my-local-model", check=0)
        self.assertEqual(self.show()["context_window"], 4096)


if __name__ == "__main__":
    main()
