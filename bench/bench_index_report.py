#!/usr/bin/env python3
"""bench_index_report.py - the tables of bench/bench_index.sh, from its JSON files.

    python3 bench/bench_index_report.py WORK_DIR

WORK_DIR holds one directory per data set (gmm-100000, lowrank-100000,
gmm-1000000, ...), each with ours.json (bench_index) and, unless FAISS was
skipped, faiss.json (bench_index_faiss.py). Prints the machine, then per data
set a Markdown table with both libraries side by side, and the targets:
p95 <= 1 ms at 100k, p95 <= 5 ms at recall@10 >= 0.95 at 1M, build >= 5,000
inserts/s, memory <= 1.3x the raw vectors.
"""

import json
import os
import platform
import sys


def machine():
    model, mem = "?", "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        with open("/proc/meminfo") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
            mem = "%.1f GiB" % (kb / 1024 / 1024)
    except (OSError, StopIteration):
        pass
    return "%s, %d vCPUs, %s RAM, Linux %s" % (model, os.cpu_count() or 0, mem,
                                                platform.release())


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def ms(v):
    return "%.3f ms" % v if v is not None else "-"


def table(name, ours, faiss):
    n = int(ours["n"])
    target_ms = 1.0 if n <= 200000 else 5.0
    print("\n### %s: %d x %d-d, %d queries, M %d, ef_construction %d\n" %
          (name, n, ours["dim"], ours["queries"], ours["m"], ours["ef_construction"]))
    if ours.get("rank"):
        print("Gaussian mixture, %d clusters, each spread along %d directions plus %.2f "
              "isotropic noise, normalized.\n" % (ours["clusters"], ours["rank"], ours["noise"]))
    else:
        print("Gaussian mixture, %d clusters, isotropic spread %.2f, normalized.\n" %
              (ours["clusters"], ours["spread"]))
    print("| | ours | FAISS IndexHNSWFlat %s |" % (faiss["faiss_version"] if faiss else "(skipped)"))
    print("|---|---|---|")
    f = faiss or {}
    print("| build, one thread | %.1f s, **%.0f inserts/s** | %s |" %
          (ours["build_s"], ours["inserts_per_s"],
           "%.1f s, %.0f inserts/s" % (f["build_s"], f["inserts_per_s"]) if f else "-"))
    print("| index memory / raw vectors | **%.3fx** (%.0f MB) | %s |" %
          (ours["memory_ratio"], ours["memory_bytes"] / 1e6,
           "%.3fx" % f["memory_ratio"] if f else "-"))
    print("| exact search, SIMD scan, p50 / p95 | %s / %s | |" %
          (ms(ours["exact_simd_p50_ms"]), ms(ours["exact_simd_p95_ms"])))
    print("| exact search, mg_vec_dot scan (today's archival loop), p50 / p95 | %s / %s | |" %
          (ms(ours["exact_vecdot_p50_ms"]), ms(ours["exact_vecdot_p95_ms"])))
    best = None
    for ef in [int(e) for e in ours["efs"].split(",")]:
        k = "ef%d" % ef
        r = ours[k + "_recall"]
        line = "| ef %d: recall@10, p50 / p95 / p99 | %.4f, %s / %s / %s |" % (
            ef, r, ms(ours[k + "_p50_ms"]), ms(ours[k + "_p95_ms"]), ms(ours[k + "_p99_ms"]))
        if f and k + "_recall" in f:
            line += " %.4f, %s / %s / %s |" % (f[k + "_recall"], ms(f[k + "_p50_ms"]),
                                                ms(f[k + "_p95_ms"]), ms(f[k + "_p99_ms"]))
        else:
            line += " |"
        print(line)
        if best is None and r >= 0.95:
            best = (ef, r, ours[k + "_p95_ms"])
    print("| save / load (file size) | %.2f s / %.2f s (%.0f MB), results after load %s | |" %
          (ours["save_s"], ours["load_s"], ours["file_bytes"] / 1e6,
           "identical" if ours["load_identical"] else "DIFFERENT"))
    if "deleted" in ours:
        efs = [int(e) for e in ours["efs"].split(",")]
        rec = ", ".join("ef %d %.4f" % (e, ours["del_ef%d_recall" % e]) for e in efs[1:4])
        print("| remove %d (%.0f%%), incl. cleanup passes | %.0f us a remove, slowest %.2f s; "
              "recall@10 after: %s | |" % (ours["deleted"], 100 * ours["deleted"] / n,
                                            ours["remove_mean_us"], ours["remove_max_s"], rec))
    if f:
        print("| FAISS Python call overhead (in its latencies) | | %s |" %
              ms(f["call_overhead_p50_ms"]))
    print()
    verdict = []
    if best:
        verdict.append("smallest ef with recall@10 >= 0.95: %d (%.4f), p95 %.3f ms vs target "
                       "%.0f ms: %s" % (best[0], best[1], best[2], target_ms,
                                        "met" if best[2] <= target_ms else "MISSED"))
    else:
        verdict.append("recall@10 >= 0.95 not reached at any ef run")
    verdict.append("build %.0f/s vs >= 5,000/s: %s" %
                   (ours["inserts_per_s"], "met" if ours["inserts_per_s"] >= 5000 else "MISSED"))
    verdict.append("memory %.3fx vs <= 1.3x: %s" %
                   (ours["memory_ratio"], "met" if ours["memory_ratio"] <= 1.3 else "MISSED"))
    for v in verdict:
        print("- " + v)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench_index_report.py WORK_DIR")
    work = sys.argv[1]
    print("Machine: " + machine())
    names = sorted(d for d in os.listdir(work) if os.path.isdir(os.path.join(work, d)))
    names.sort(key=lambda d: (int(d.rsplit("-", 1)[-1]) if d.rsplit("-", 1)[-1].isdigit() else 0,
                              d))
    for name in names:
        ours = load(os.path.join(work, name, "ours.json"))
        if ours:
            table(name, ours, load(os.path.join(work, name, "faiss.json")))


if __name__ == "__main__":
    main()
