#!/usr/bin/env python3
"""report.py - the results table of bench/run.sh, from bench_step's and bench_send.py's JSON.

    python3 bench/report.py STEP_JSON SEND_JSON [--data-dir DIR]

Prints the machine, then one Markdown table: each figure, its target where
the product requirements set one, and whether it is met (by how much it is
missed when it is not). Targets: step overhead p50 <= 1 ms; `memgpt send`
start to first byte p50 <= 20 ms; peak RSS of `memgpt send` <= 15 MB (judged
on the max of the runs).
"""

import argparse
import json
import os
import platform
import subprocess

STEP_TARGET_MS = 1.0
SEND_TARGET_MS = 20.0
RSS_TARGET_MB = 15.0


def machine(data_dir):
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    fs = ""
    if data_dir:
        try:
            out = subprocess.run(["df", "--output=fstype", data_dir], capture_output=True,
                                 text=True).stdout.split()
            fs = out[-1] if len(out) > 1 else ""
        except OSError:
            pass
    u = platform.uname()
    line = "machine: %s CPUs (nproc), %s, %s RAM, Linux %s" % (nproc, model, mem, u.release)
    if fs:
        line += ", data dir on %s" % fs
    return line


def verdict(value, target):
    if value <= target:
        return "met"
    return "MISSED by %.1fx (+%s)" % (value / target, fmt_ms(value - target))


def fmt_ms(v):
    if v >= 100:
        return "%.0f ms" % v
    if v >= 10:
        return "%.1f ms" % v
    return "%.2f ms" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("step_json")
    ap.add_argument("send_json")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    with open(args.step_json) as f:
        step = json.load(f)
    with open(args.send_json) as f:
        send = json.load(f)

    print(machine(args.data_dir))
    print("agent 'big': %d messages in recall (~20 in context), %d archival passages; "
          "%d timed turns; %d `memgpt send` runs per case" %
          (step["messages"], step["passages"], step["turns"], send["runs"]))
    print()
    rows = []

    def add(metric, d, target=None, judge="p50_ms", extra=""):
        cells = [metric] + [fmt_ms(d[k]) if d.get(k) is not None else "-"
                            for k in ("p50_ms", "p95_ms", "p99_ms")]
        cells += [str(d.get("n", "")), "", ""]
        if target is not None and d.get("n"):
            cells[5] = "p50 <= %s" % fmt_ms(target) if judge == "p50_ms" else str(target)
            cells[6] = verdict(d[judge], target)
        if extra:
            cells[6] = (cells[6] + "; " if cells[6] else "") + extra
        rows.append(cells)

    add("1. step overhead: plain turn (1 step), instant provider", step["plain_turn"],
        STEP_TARGET_MS)
    add("   before the LLM call", step["plain_pre"])
    add("   after the LLM call", step["plain_post"])
    if step.get("plain_turn_enc", {}).get("n"):
        add("   plain turn, provider encodes JSON (excluded)", step["plain_turn_enc"],
            STEP_TARGET_MS)
        add("   the same turns with the JSON encode included", step["plain_turn_with_encode"],
            STEP_TARGET_MS, extra="what the HTTP provider adds, before any I/O")
    add("   conversation_search step", step["conv_step"], STEP_TARGET_MS,
        extra="%d more skipped (time budget)" % step["skipped_conv_searches"]
        if step.get("skipped_conv_searches") else "")
    add("   archival_memory_search step", step["arch_step"], STEP_TARGET_MS)
    add("   flush turn (evict + summary), runtime part", step["flush_turn"])
    if step.get("encode", {}).get("n"):
        eq = step["encode_by_quarter"]
        add("   + request JSON encode per call (HTTP provider, est.)", step["encode"],
            extra="not in the figures above; p50 %s in the 1st quarter, %s in the 4th" %
            (fmt_ms(eq[0]["p50_ms"]), fmt_ms(eq[3]["p50_ms"])))
    add("   mg_agent_open, big agent (in-process)", step["agent_open"])
    rows.append(["   populate recall (one transaction)", "%.0f msg/s" % step["messages_per_sec"],
                 "", "", str(step["messages"]), "", "%.1f s" % step["populate_messages_sec"]])
    rows.append(["   populate archival (one transaction)",
                 "%.0f passages/s" % step["passages_per_sec"], "", "", str(step["passages"]), "",
                 "%.1f s" % step["populate_passages_sec"]])

    cases = send["cases"]
    floor = cases["true"]["wall_ms"]

    def send_row(label, name, target):
        c = cases.get(name)
        if not c:
            return
        d = c["first_byte_ms"]
        dd = {"p50_ms": d["p50"], "p95_ms": d["p95"], "p99_ms": None, "n": d["n"]}
        add(label, dd, target, extra="%.1fx the spawn floor" % (d["median"] / floor["median"]))

    send_row("2. `memgpt send` to first byte: big agent", "big", SEND_TARGET_MS)
    send_row("   small (fresh) agent", "small", SEND_TARGET_MS)
    send_row("   full-context agent (extra)", "full", None)
    rows.append(["   spawn floor: /bin/true, start to exit", fmt_ms(floor["p50"]),
                 fmt_ms(floor["p95"]), "", str(floor["n"]), "", "reference"])
    if "version" in cases:
        v = cases["version"]["wall_ms"]
        rows.append(["   memgpt --version, start to exit", fmt_ms(v["p50"]), fmt_ms(v["p95"]), "",
                     str(v["n"]), "", "%.1fx the spawn floor" % (v["median"] / floor["median"])])
    for name, label in (("big", "3. peak RSS, `memgpt send`, big agent"),
                        ("small", "   small agent"), ("full", "   full-context agent (extra)"),
                        ("version", "   memgpt --version"),
                        ("true", "   /bin/true (method check)")):
        c = cases.get(name)
        if not c:
            continue
        r = c["maxrss_kib"]
        med, mx = r["median"] / 1024, r["max"] / 1024
        target = "max <= %.0f MB" % RSS_TARGET_MB if name == "big" else ""
        status = ""
        if name == "big":
            status = "met" if mx <= RSS_TARGET_MB else "MISSED by %.1f MB" % (mx - RSS_TARGET_MB)
        rows.append([label, "median %.1f MB" % med, "max %.1f MB" % mx, "", str(r["n"]), target,
                     status])

    head = ["metric", "p50", "p95", "p99", "n", "target", "result"]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
