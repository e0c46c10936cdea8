#!/usr/bin/env python3
"""bench_index_faiss.py - FAISS's IndexHNSWFlat on the vectors bench_index wrote.

    /usr/bin/python3 bench/bench_index_faiss.py --dir WORK_DIR --m M --efc E
        [--ef 16,32,64,128,256] [--json FILE]

Reads WORK_DIR/base.f32, queries.f32 (float32, row-major) and gt.i32 (exact
top 10 per query, from bench_index), so both libraries see the same vectors
and are judged against the same answers. One thread (omp_set_num_threads(1)),
like bench_index.

IndexHNSWFlat(d, M) has the same graph shape as ours (M links per upper
level, 2M on level 0, level probability M^-l); efConstruction and efSearch
are set to the same values. Its metric is L2: on unit vectors
|a - b|^2 = 2 - 2 a.b, so the order of neighbours is the same as by dot
product.

Latency is per query, one `index.search(q[i:i+1], 10)` call each, timed with
perf_counter around the call, so it includes the Python-to-C call overhead;
that overhead is measured apart (the same call on a one-vector flat index)
and reported, so it can be subtracted. Memory: the bytes of FAISS's own
arrays (vectors, neighbour lists, offsets, levels), which is what our
memory_bytes counts too.
"""

import argparse
import json
import os
import time

import faiss
import numpy as np

TOPK = 10


def summarize(ms):
    ms = sorted(ms)
    n = len(ms)

    def pct(p):
        i = max(0, min(n - 1, int(np.ceil(p * n)) - 1))
        return ms[i]

    return {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": sum(ms) / n}


def recall(found, truth):
    t = set(int(v) for v in truth if v >= 0)
    return len(t.intersection(int(v) for v in found)) / TOPK


def index_bytes(index):
    h = index.hnsw
    total = index.ntotal * index.d * 4  # the flat storage of the vectors
    for vec in (h.neighbors, h.offsets, h.levels, h.assign_probas, h.cum_nneighbor_per_level):
        arr = faiss.vector_to_array(vec)
        total += arr.nbytes
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=40)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--json")
    a = ap.parse_args()

    faiss.omp_set_num_threads(1)
    base = np.fromfile(os.path.join(a.dir, "base.f32"), dtype="<f4")
    gt = np.fromfile(os.path.join(a.dir, "gt.i32"), dtype="<i4").reshape(-1, TOPK)
    queries = np.fromfile(os.path.join(a.dir, "queries.f32"), dtype="<f4")
    d = queries.size // gt.shape[0]
    base = base.reshape(-1, d)
    queries = queries.reshape(-1, d)
    out = {"faiss_version": faiss.__version__, "n": base.shape[0], "dim": d, "m": a.m,
           "ef_construction": a.efc}

    index = faiss.IndexHNSWFlat(d, a.m)
    index.hnsw.efConstruction = a.efc
    t0 = time.perf_counter()
    index.add(base)
    out["build_s"] = time.perf_counter() - t0
    out["inserts_per_s"] = base.shape[0] / out["build_s"]
    out["memory_bytes"] = index_bytes(index)
    out["memory_ratio"] = out["memory_bytes"] / (base.shape[0] * d * 4)
    print("faiss %s: build %.1f s, %.0f inserts/s, memory %.3fx raw" %
          (faiss.__version__, out["build_s"], out["inserts_per_s"], out["memory_ratio"]))
    del base

    # The cost of the call itself: search on a one-vector flat index.
    tiny = faiss.IndexFlatL2(d)
    tiny.add(queries[:1])
    ms = []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        tiny.search(queries[i:i + 1], 1)
        ms.append((time.perf_counter() - t0) * 1e3)
    out["call_overhead_p50_ms"] = summarize(ms)["p50"]

    efs = [int(v) for v in a.ef.split(",") if v]
    for ef in efs:
        index.hnsw.efSearch = ef
        for warm in (True, False):
            ms, rs = [], 0.0
            for i in range(len(queries)):
                t0 = time.perf_counter()
                _, labels = index.search(queries[i:i + 1], TOPK)
                ms.append((time.perf_counter() - t0) * 1e3)
                rs += recall(labels[0], gt[i])
        s = summarize(ms)
        r = rs / len(queries)
        out["ef%d_recall" % ef] = r
        for k, v in s.items():
            out["ef%d_%s_ms" % (ef, k)] = v
        print("faiss ef %4d:  recall@10 %.4f  p50 %.3f ms  p95 %.3f ms  p99 %.3f ms" %
              (ef, r, s["p50"], s["p95"], s["p99"]))
    print("faiss call overhead (one-vector flat index): p50 %.3f ms" % out["call_overhead_p50_ms"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
