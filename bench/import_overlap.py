#!/usr/bin/env python3
"""Scan rate during imports against the rate between them, from sample_status.py CSVs.

    import_overlap.py [--reference CSV] CSV [CSV...]

An interval between two consecutive samples counts when both fall in the scan phase; it is
"during an import" when an import round runs at both ends, "between imports" when at
neither. Prints, per file and for all together, the rows/s of each kind (rows scanned in
such intervals over their total time: a sample sees rows in whole batches, so single
intervals are lumpy) and their ratio (the target: during >= 0.5 x between). With
--reference, a run of the same build that imports only at the end: its scan rate is the
rate "with no import running", beside which each run's rate during imports is put too (when
imports follow each other closely, the time between them is short and its rate rough).
"""
import csv
import sys


# Less time than this between imports (the start of the scan, mostly: a burst of batches
# after the first empty samples) says nothing about a rate.
MIN_BETWEEN_S = 2.0


def intervals(path):
    rows = list(csv.DictReader(open(path)))
    during, between = [], []
    for a, b in zip(rows, rows[1:]):
        if a["phase"] != "scan" or b["phase"] != "scan":
            continue
        dt = float(b["t"]) - float(a["t"])
        if dt <= 0:
            continue
        rows = int(b["rows_done"]) - int(a["rows_done"])
        if a["importing"] == "1" and b["importing"] == "1":
            during.append((rows, dt))
        elif a["importing"] == "0" and b["importing"] == "0":
            between.append((rows, dt))
    return during, between


def rate(intervals):
    t = sum(dt for _, dt in intervals)
    return sum(r for r, _ in intervals) / t if t > 0 else 0.0, t


def report(name, during, between):
    if not during or not between:
        print("%-28s during: %d samples, between: %d samples: not enough to compare"
              % (name, len(during), len(between)))
        return None
    (d, dt), (b, bt) = rate(during), rate(between)
    if bt < MIN_BETWEEN_S:
        print("%-28s during imports: %9.0f rows/s (%5.1f s)  between: only %.1f s of samples, "
              "too little to compare" % (name, d, dt, bt))
        return None
    if b <= 0:
        print("%-28s between imports the scan did not move: nothing to compare" % name)
        return None
    print("%-28s during imports: %9.0f rows/s (%5.1f s)  between: %9.0f rows/s (%5.1f s)"
          "  ratio %.2f" % (name, d, dt, b, bt, d / b))
    return d / b


def main():
    args = sys.argv[1:]
    ref = None
    if len(args) >= 2 and args[0] == "--reference":
        ref = intervals(args[1])[1]
        args = args[2:]
    all_d, all_b = [], []
    for p in args:
        d, b = intervals(p)
        report(p.rsplit("/", 1)[-1], d, b)
        all_d += d
        all_b += b
    if len(args) > 1:
        report("all", all_d, all_b)
    if ref:
        r, rt = rate(ref)
        print("reference (no import during the scan): %9.0f rows/s (%5.1f s)" % (r, rt))
        report("all vs the reference", all_d, ref)


if __name__ == "__main__":
    main()
