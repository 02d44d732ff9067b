#!/usr/bin/env python3
"""Scan rate during imports against the rate between them, from sample_status.py CSVs.

    import_overlap.py CSV [CSV...]

An interval between two consecutive samples counts when both fall in the scan phase; it is
"during an import" when an import round runs at both ends, "between imports" when at
neither. Prints, per file and for all together, the median rows/s of each kind and their
ratio (the target: during >= 0.5 x between).
"""
import csv
import statistics
import sys


def intervals(path):
    rows = list(csv.DictReader(open(path)))
    during, between = [], []
    for a, b in zip(rows, rows[1:]):
        if a["phase"] != "scan" or b["phase"] != "scan":
            continue
        dt = float(b["t"]) - float(a["t"])
        if dt <= 0:
            continue
        rate = (int(b["rows_done"]) - int(a["rows_done"])) / dt
        if a["importing"] == "1" and b["importing"] == "1":
            during.append(rate)
        elif a["importing"] == "0" and b["importing"] == "0":
            between.append(rate)
    return during, between


def report(name, during, between):
    if not during or not between:
        print("%-28s during: %d samples, between: %d samples: not enough to compare"
              % (name, len(during), len(between)))
        return None
    d, b = statistics.median(during), statistics.median(between)
    print("%-28s during imports: %9.0f rows/s (%3d samples)  between: %9.0f rows/s (%3d samples)"
          "  ratio %.2f" % (name, d, len(during), b, len(between), d / b))
    return d / b


def main():
    all_d, all_b = [], []
    for p in sys.argv[1:]:
        d, b = intervals(p)
        report(p.rsplit("/", 1)[-1], d, b)
        all_d += d
        all_b += b
    if len(sys.argv) > 2:
        report("all", all_d, all_b)


if __name__ == "__main__":
    main()
