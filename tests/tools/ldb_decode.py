#!/usr/bin/env python3
"""Independent check of a bfill store through RocksDB's own `ldb` tool.

Reads `ldb --db=DIR --hex scan` output (running ldb itself with --db, or
reading saved output with --input), decodes every TiDB record key
('t' + 8-byte sign-flipped big-endian table id + "_r" + 8-byte handle) and
its row-format-v2 value straight from the byte layout, and checks that each
row has the sysbench sbtest shape:

  id   BIGINT     the handle, kept in the key only
  k    INT        column id 2, in [1, N] (N = --rows, else the table's row count)
  c    CHAR(120)  column id 3, ten groups of 11 digits joined by '-' (119 bytes)
  pad  CHAR(60)   column id 4, five such groups (59 bytes)

and that each table's handles are exactly 1..N. Prints a summary and exits
0 when everything is well-formed (and --expect matches), 1 when anything is
malformed, 2 on bad usage or when ldb fails.

Only the Python standard library is used, and nothing from bfill: the
layouts come from TiDB's tablecodec / rowcodec formats.
"""

import argparse
import re
import subprocess
import sys
from array import array

SIGN_FLIP = 1 << 63
RECORD_KEY_LEN = 19  # 't' + 8 + "_r" + 8
ROW_CODEC_VER = 128
ROW_FLAG_LARGE = 0x01
ROW_FLAG_CHECKSUM = 0x02

C_RE = re.compile(rb"\A[0-9]{11}(?:-[0-9]{11}){9}\Z")
PAD_RE = re.compile(rb"\A[0-9]{11}(?:-[0-9]{11}){4}\Z")
LINE_RE = re.compile(r"\A0x([0-9A-Fa-f]*) : 0x([0-9A-Fa-f]*)\Z")


class Malformed(Exception):
    pass


def decode_cmp_int(b):
    """A memcomparable int64: big-endian with the sign bit flipped."""
    u = int.from_bytes(b, "big") ^ SIGN_FLIP
    return u - (1 << 64) if u >= SIGN_FLIP else u


def decode_record_key(key):
    """(table_id, handle) of a record key, or raises Malformed."""
    if len(key) != RECORD_KEY_LEN:
        raise Malformed("record key of %d bytes, want %d" % (len(key), RECORD_KEY_LEN))
    if key[0:1] != b"t" or key[9:11] != b"_r":
        raise Malformed("not a record key")
    return decode_cmp_int(key[1:9]), decode_cmp_int(key[11:19])


def is_record_key(key):
    return len(key) >= 11 and key[0:1] == b"t" and key[9:11] == b"_r"


def decode_row_v2(val):
    """Returns {column id: bytes or None (NULL)} for a row-format-v2 value."""
    if len(val) < 6:
        raise Malformed("row value of %d bytes is shorter than its header" % len(val))
    if val[0] != ROW_CODEC_VER:
        raise Malformed("row codec version %d, want %d" % (val[0], ROW_CODEC_VER))
    flags = val[1]
    if flags & ~(ROW_FLAG_LARGE | ROW_FLAG_CHECKSUM):
        raise Malformed("unknown row flags 0x%02x" % flags)
    large = bool(flags & ROW_FLAG_LARGE)
    n_notnull = int.from_bytes(val[2:4], "little")
    n_null = int.from_bytes(val[4:6], "little")
    id_w, off_w = (4, 4) if large else (1, 2)
    pos = 6
    need = pos + (n_notnull + n_null) * id_w + n_notnull * off_w
    if need > len(val):
        raise Malformed("row ids and offsets run past the value (%d > %d)" % (need, len(val)))
    ids = [int.from_bytes(val[pos + i * id_w:pos + (i + 1) * id_w], "little")
           for i in range(n_notnull + n_null)]
    pos += (n_notnull + n_null) * id_w
    offs = [int.from_bytes(val[pos + i * off_w:pos + (i + 1) * off_w], "little")
            for i in range(n_notnull)]
    pos += n_notnull * off_w
    notnull, null = ids[:n_notnull], ids[n_notnull:]
    for group, what in ((notnull, "not-null"), (null, "null")):
        if any(a >= b for a, b in zip(group, group[1:])):
            raise Malformed("%s column ids are not strictly ascending: %s" % (what, group))
    if set(notnull) & set(null):
        raise Malformed("a column is both null and not null")
    if any(a > b for a, b in zip(offs, offs[1:])):
        raise Malformed("column end offsets decrease: %s" % offs)
    data_len = offs[-1] if offs else 0
    if pos + data_len > len(val):
        raise Malformed("row data runs past the value (%d > %d)" % (pos + data_len, len(val)))
    data = val[pos:pos + data_len]
    rest = len(val) - (pos + data_len)
    if flags & ROW_FLAG_CHECKSUM:
        # One header byte and a CRC32, optionally a second CRC32.
        if rest not in (5, 9):
            raise Malformed("checksum of %d bytes" % rest)
    elif rest:
        raise Malformed("%d trailing bytes after the row data" % rest)
    if not large and (data_len > 65535 or any(i > 255 for i in ids)):
        raise Malformed("small row form with large contents")
    cols = {}
    start = 0
    for cid, end in zip(notnull, offs):
        cols[cid] = data[start:end]
        start = end
    for cid in null:
        cols[cid] = None
    return cols


def decode_int_le(b):
    """A row-v2 signed integer: 1, 2, 4 or 8 bytes little-endian."""
    if len(b) not in (1, 2, 4, 8):
        raise Malformed("integer of %d bytes" % len(b))
    return int.from_bytes(b, "little", signed=True)


def check_sbtest_row(cols):
    """Returns k, or raises Malformed when the row is not sysbench-shaped."""
    if sorted(cols) != [2, 3, 4] or any(v is None for v in cols.values()):
        raise Malformed("columns %s, want k(2), c(3), pad(4) all not null"
                        % sorted((cid, v is None) for cid, v in cols.items()))
    k = decode_int_le(cols[2])
    if len(cols[3]) != 119 or not C_RE.match(cols[3]):
        raise Malformed("c is not ten dash-joined 11-digit groups: %r" % cols[3][:130])
    if len(cols[4]) != 59 or not PAD_RE.match(cols[4]):
        raise Malformed("pad is not five dash-joined 11-digit groups: %r" % cols[4][:70])
    return k


class Table:
    """The decodable rows of one table, in scan (key) order."""

    def __init__(self):
        self.handles = array("q")
        self.ks = array("q")


def self_test():
    """Golden vectors written from the format descriptions."""
    k = bytes.fromhex("7480000000000000015f728000000000000001")
    assert decode_record_key(k) == (1, 1)
    mask = (1 << 64) - 1
    k = (b"t" + (100 ^ SIGN_FLIP).to_bytes(8, "big") + b"_r"
         + (((-5) & mask) ^ SIGN_FLIP).to_bytes(8, "big"))
    assert decode_record_key(k) == (100, -5), decode_record_key(k)
    # Not-null ids 2, 3; null id 4; col 2 = int 5, col 3 = "abc".
    row = bytes.fromhex("800002000100" "020304" "01000400" "05616263")
    assert decode_row_v2(row) == {2: b"\x05", 3: b"abc", 4: None}
    assert decode_int_le(b"\xff\xff") == -1
    # Large form: id 256, an empty string.
    row = bytes.fromhex("800101000000" "00010000" "00000000")
    assert decode_row_v2(row) == {256: b""}
    for bad in ("7f0000000000", "801000000000", "800001000000" "01" "0900",
                "800002000000" "0302" "01000200" "6162", "800000000000aa", "8000"):
        try:
            decode_row_v2(bytes.fromhex(bad))
        except Malformed:
            continue
        raise AssertionError("accepted bad row " + bad)
    good = {2: b"\x07", 3: b"-".join([b"0" * 11] * 10), 4: b"-".join([b"9" * 11] * 5)}
    assert check_sbtest_row(good) == 7
    for mutate in (lambda c: c.pop(4), lambda c: c.__setitem__(3, c[3][:-1] + b"x"),
                   lambda c: c.__setitem__(4, c[4][:-1]), lambda c: c.__setitem__(2, b"\x01\x02\x03")):
        c = dict(good)
        mutate(c)
        try:
            check_sbtest_row(c)
        except Malformed:
            continue
        raise AssertionError("accepted a bad sbtest row")
    print("self-test: ok")
    return 0


def scan_lines(args):
    if args.input:
        f = sys.stdin if args.input == "-" else open(args.input, "r")
        try:
            for line in f:
                yield line
        finally:
            if f is not sys.stdin:
                f.close()
        return
    cmd = [args.ldb, "--db=" + args.db, "--hex", "scan"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        yield line
    err = proc.stderr.read()
    if proc.wait() != 0:
        sys.stderr.write("ldb_decode: %s failed (exit %d): %s\n"
                         % (" ".join(cmd), proc.returncode, err.strip()))
        sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="store directory to scan with ldb")
    src.add_argument("--input", help="saved `ldb --hex scan` output ('-' = stdin)")
    src.add_argument("--self-test", action="store_true", help="check the decoders on golden vectors")
    ap.add_argument("--ldb", default="ldb", help="the ldb binary (default: ldb in PATH)")
    ap.add_argument("--rows", type=int, help="N: k must be in [1, N] and handles 1..N")
    ap.add_argument("--expect", type=int, help="exit 1 unless exactly this many rows are well-formed")
    ap.add_argument("--show", type=int, default=5, help="malformed entries to describe (default 5)")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    keys = records = well_formed = malformed = other_data = non_data = bad_lines = 0
    tables = {}
    shown = 0

    def report(what, key, why):
        nonlocal shown
        if shown < args.show:
            sys.stderr.write("malformed %s 0x%s: %s\n" % (what, key.hex().upper(), why))
            shown += 1

    for line in scan_lines(args):
        line = line.rstrip("\n")
        if not line:
            continue
        m = LINE_RE.match(line)
        if not m:
            bad_lines += 1
            if shown < args.show:
                sys.stderr.write("unparsed ldb output line: %.120s\n" % line)
                shown += 1
            continue
        keys += 1
        key, val = bytes.fromhex(m.group(1)), bytes.fromhex(m.group(2))
        if not key.startswith(b"t"):
            non_data += 1
            continue
        if not is_record_key(key):
            other_data += 1
            continue
        records += 1
        try:
            tid, handle = decode_record_key(key)
            k = check_sbtest_row(decode_row_v2(val))
        except Malformed as e:
            malformed += 1
            report("record", key, str(e))
            continue
        t = tables.setdefault(tid, Table())
        t.handles.append(handle)
        t.ks.append(k)

    # k must lie in [1, N], N being --rows or the number of rows the table
    # holds; rows outside are malformed. The rest must have handles 1..N.
    ok = True
    for tid, t in sorted(tables.items()):
        n = args.rows if args.rows is not None else len(t.handles)
        good = array("q", (h for h, k in zip(t.handles, t.ks) if 1 <= k <= n))
        out_of_range = len(t.handles) - len(good)
        if out_of_range:
            malformed += out_of_range
            sys.stderr.write("table %d: %d rows with k outside [1, %d]\n" % (tid, out_of_range, n))
        ks = [k for k in t.ks if 1 <= k <= n]
        t.rows = len(good)
        t.first = good[0] if good else None
        t.last = good[-1] if good else None
        t.kmin = min(ks) if ks else None
        t.kmax = max(ks) if ks else None
        t.contiguous = all(h == i for i, h in enumerate(good, 1))
        if args.rows is not None and t.rows != args.rows:
            t.contiguous = False
        if not t.contiguous:
            ok = False
        well_formed += t.rows

    src_name = args.db if args.db else args.input
    print("ldb scan of %s: %d keys" % (src_name, keys))
    print("record keys found: %d" % records)
    print("well-formed: %d" % well_formed)
    print("malformed: %d" % malformed)
    print("other data keys: %d" % other_data)
    print("non-data keys: %d" % non_data)
    if bad_lines:
        print("unparsed lines: %d" % bad_lines)
    print("table ids: %s" % (" ".join(str(t) for t in sorted(tables)) or "none"))
    for tid, t in sorted(tables.items()):
        print("table %d: %d rows, handles %s..%s (%s), k in [%s, %s]"
              % (tid, t.rows, t.first, t.last,
                 "contiguous from 1" if t.contiguous else "NOT 1..N",
                 t.kmin, t.kmax))
    if malformed or bad_lines or not ok:
        return 1
    if args.expect is not None and well_formed != args.expect:
        sys.stderr.write("ldb_decode: %d well-formed rows, expected %d\n" % (well_formed, args.expect))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
