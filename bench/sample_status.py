#!/usr/bin/env python3
"""Samples `bfill status --json` for one job at a fixed interval while a process runs.

    sample_status.py --bfill BIN --store DIR --job ID --pid PID [--interval 0.25] --out CSV

Writes one line per sample: seconds since the first sample, rows_done, importing (0/1),
phase. Ticks are on a fixed schedule (a slow status call delays one sample, not the rest).
Stops when PID is gone.
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
    ap.add_argument("--store", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    tick = t0
    with open(a.out, "w") as out:
        out.write("t,rows_done,importing,phase\n")
        while alive(a.pid):
            r = subprocess.run([a.bfill, "status", "--store", a.store, "--job", a.job, "--json"],
                               capture_output=True, text=True)
            now = time.monotonic()
            if r.returncode == 0:
                try:
                    d = json.loads(r.stdout)
                    out.write("%.3f,%d,%d,%s\n" % (now - t0, d["rows_done"],
                                                   1 if d.get("importing") else 0, d["phase"]))
                    out.flush()
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
