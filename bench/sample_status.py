#!/usr/bin/env python3
"""Samples `bfill status --json` for one job at a fixed interval while a process runs.

    sample_status.py --bfill BIN (--store DIR | --etcd EPS --cluster NAME) --job ID
                     (--pid PID | --until-done) [--interval 0.25] --out CSV

Writes one line per sample: seconds since the first sample, rows_done, importing (0/1),
phase, rows_imported (rows behind the last durable import: the job's imported checkpoint, or
for a cluster's shared job the sum of its subtasks' checkpoints) and the number of subtasks
running. Ticks are on a fixed schedule (a slow status call delays one sample, not the rest).
Stops when PID is gone, or with --until-done when the job is over.
"""
import argparse
import json
import os
import subprocess
import time


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bfill", required=True)
    ap.add_argument("--store")
    ap.add_argument("--etcd")
    ap.add_argument("--cluster")
    ap.add_argument("--job", required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--until-done", action="store_true")
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    where = ["--store", a.store] if a.store else ["--etcd", a.etcd, "--cluster", a.cluster]
    over = False
    t0 = time.monotonic()
    tick = t0
    with open(a.out, "w") as out:
        out.write("t,rows_done,importing,phase,rows_imported,running\n")
        while (a.pid and alive(a.pid)) or (a.until_done and not over):
            r = subprocess.run([a.bfill, "status"] + where + ["--job", a.job, "--json"],
                               capture_output=True, text=True)
            now = time.monotonic()
            if r.returncode == 0:
                try:
                    d = json.loads(r.stdout)
                    subs = d.get("subtasks") or []
                    if subs:
                        imported = sum(s["rows_checkpointed"] for s in subs)
                    else:
                        imported = d["checkpoint"]["imported_rows"]
                    running = sum(1 for s in subs if s["state"] == "running")
                    out.write("%.3f,%d,%d,%s,%d,%d\n" % (now - t0, d["rows_done"],
                                                         1 if d.get("importing") else 0,
                                                         d["phase"], imported, running))
                    out.flush()
                    over = d["state"] in ("done", "failed", "cancelled")
                except (ValueError, KeyError):
                    pass
            tick += a.interval
            delay = tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                tick = time.monotonic()


if __name__ == "__main__":
    main()
