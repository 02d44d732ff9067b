#!/usr/bin/env python3
r"""Independent check of a bfill store through RocksDB's own `ldb` tool.

Reads `ldb --db=DIR --hex scan` output (running ldb itself with --db, or
reading saved output with --input) and decodes TiDB keys and row-format-v2
values straight from the byte layouts. Two modes:

sbtest mode (the default): every record key ('t' + 8-byte sign-flipped
big-endian table id + "_r" + 8-byte handle) must hold a row of the sysbench
sbtest shape:

  id   BIGINT     the handle, kept in the key only
  k    INT        column id 2, in [1, N] (N = --rows, else the table's row count)
  c    CHAR(120)  column id 3, ten groups of 11 digits joined by '-' (119 bytes)
  pad  CHAR(60)   column id 4, five such groups (59 bytes)

and each table's handles must be exactly 1..N.

table mode (--table T [--index I ...], or --catalog for every table): the
schema of each table -- column ids and types, the handle column, the
indexes with their columns, prefix lengths and uniqueness -- is read from
bfill's catalog records in the same scan (JSON under "mbfill/table/<name>").
Every row of the table is decoded by that schema and rejected when a value
has the wrong width or shape, is out of range for its type, is a string
that is not UTF-8 or has too many characters, a DATETIME that is no real
date or has more fraction digits than the column keeps, or a DECIMAL that
does not fit its precision. Every entry of each index is decoded the same
way from its key and value, and the index must be exactly the entries the
rows call for: one per row, with each column's datum (a prefix column cut
to its first N characters) and the handle -- none missing, none extra.
Checked are the indexes named with --index, else every public one.
The summary has a line per table ("table T (id 100, handle id): 37 rows,
0 malformed"), one per index ("index ib (id 1; b(3),f): 37 entries, 37
expected, 0 malformed, 0 missing, 0 extra") and a last "result: OK" or
"result: FAILED, N problems"; each problem is described on stderr (the
first --show of them), naming the key in hex. Index entries that belong to
a malformed row are not counted again as extra.

--dump (with one --table) prints the decoded rows to stdout as
tab-separated text, in handle order, after a header line of column names;
a table without an integer primary key gets a leading `_tidb_rowid`
column. The summary then goes to stderr. Values print as:

  integers      decimal
  DOUBLE        Python's repr (the shortest text that reads back exactly:
                1.5, 100.0, 1e+300, 5e-324)
  DATETIME(f)   YYYY-MM-DD HH:MM:SS, then '.' and f fraction digits if f > 0
  DECIMAL(p,s)  exactly s digits after the point ("-1234.50", "0.00")
  strings       as stored, with tab, line feed and backslash written
                \t, \n, \\ and other control characters \xNN
  NULL          \N

Exits 0 when everything is well-formed (and --expect matches), 1 when
anything is malformed, missing or extra, 2 on bad usage (an unknown table
or index, a column type this tool does not know) or when ldb fails.

Only the Python standard library is used, and nothing from bfill: the byte
layouts are decoded from TiDB's tablecodec / codec / rowcodec formats; only
bfill's catalog JSON (what the table looks like) is read as bfill wrote it.
Table mode keeps the table's keys in memory: it is meant for test-sized
stores.
"""

import argparse
import calendar
import json
import math
import re
import struct
import subprocess
import sys
from array import array
from collections import Counter

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


# ---------------------------------------------------------------------------
# Table mode: schemas from the catalog, and the typed decoders.
# ---------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
INDEX_PREFIX_LEN = 19  # 't' + 8 + "_i" + 8: the datums start here
CATALOG_TABLE_PREFIX = b"mbfill/table/"
HIDDEN_HANDLE = "_tidb_rowid"

# Datum flags in memcomparable keys (TiDB's util/codec).
FLAG_NULL = 0x00
FLAG_BYTES = 0x01
FLAG_INT = 0x03
FLAG_UINT = 0x04
FLAG_FLOAT = 0x05
FLAG_DECIMAL = 0x06

# The key flag each column kind is written with. DATETIME goes as its
# packed form, an unsigned integer.
KEY_FLAG = {"int": FLAG_INT, "uint": FLAG_UINT, "char": FLAG_BYTES, "varchar": FLAG_BYTES,
            "double": FLAG_FLOAT, "datetime": FLAG_UINT, "decimal": FLAG_DECIMAL}

INT_WIDTHS = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "bigint": 8}

# MySQL binary decimals: 9 decimal digits per 4-byte word; a group of fewer
# digits takes the fewest bytes that hold 10^n - 1.
DIGITS_PER_WORD = 9
DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]


class CatalogError(Exception):
    """A catalog record this tool cannot use."""


class UnknownType(CatalogError):
    """A column type this tool does not know: it cannot check the table
    (exit 2) rather than the store being malformed."""


class Column:
    """One column as the catalog describes it. kind is one of int, uint,
    char, varchar, double, datetime, decimal."""

    def __init__(self, name, cid, type_text, not_null):
        self.name = name
        self.id = cid
        self.type_text = type_text
        self.not_null = not_null
        self.width = self.length = self.fsp = self.prec = self.frac = 0
        t = type_text.lower()
        m = re.fullmatch(r"(tinyint|smallint|mediumint|int|bigint)( unsigned)?", t)
        if m:
            self.kind = "uint" if m.group(2) else "int"
            self.width = INT_WIDTHS[m.group(1)]
            bits = 8 * self.width
            if self.kind == "int":
                self.lo, self.hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            else:
                self.lo, self.hi = 0, (1 << bits) - 1
            return
        m = re.fullmatch(r"(char|varchar)\((\d+)\)", t)
        if m:
            self.kind, self.length = m.group(1), int(m.group(2))
            return
        if t == "double":
            self.kind = "double"
            return
        m = re.fullmatch(r"datetime(?:\((\d)\))?", t)
        if m:
            self.kind, self.fsp = "datetime", int(m.group(1) or 0)
            if self.fsp > 6:
                raise UnknownType("column %s: DATETIME(%d)" % (name, self.fsp))
            return
        m = re.fullmatch(r"decimal\((\d+),(\d+)\)", t)
        if m:
            self.kind, self.prec, self.frac = "decimal", int(m.group(1)), int(m.group(2))
            # MySQL's limits; beyond them the binary layout is not defined.
            if not (1 <= self.prec <= 65 and self.frac <= 30 and self.frac <= self.prec):
                raise UnknownType("column %s: DECIMAL(%d,%d)" % (name, self.prec, self.frac))
            return
        raise UnknownType("column %s: unknown type '%s'" % (name, type_text))

    def show_type(self):
        return self.type_text.upper()


class Index:
    def __init__(self, name, iid, cols, prefix, unique, state):
        self.name = name
        self.id = iid
        self.cols = cols          # Column objects, in key order
        self.prefix = prefix      # characters kept per column; 0 = all
        self.unique = unique
        self.state = state

    def describe(self):
        parts = ["%s(%d)" % (c.name, p) if p else c.name for c, p in zip(self.cols, self.prefix)]
        return "%s%s" % ("unique, " if self.unique else "", ",".join(parts))


class TableDef:
    def __init__(self, name, tid, columns, handle_col, indexes):
        self.name = name
        self.id = tid
        self.columns = columns        # in schema order
        self.handle_col = handle_col  # the int primary key, or None: hidden _tidb_rowid
        self.indexes = indexes

    def dump_header(self):
        names = [c.name for c in self.columns]
        return names if self.handle_col else [HIDDEN_HANDLE] + names


def _cat_int(v, what):
    """bfill writes 64-bit ids as decimal strings (JSON numbers lose bits);
    accept either."""
    if isinstance(v, bool):
        raise CatalogError("%s is not an integer" % what)
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    raise CatalogError("%s is not an integer: %r" % (what, v))


def parse_table_record(text):
    """A TableDef from the JSON of a catalog table record."""
    try:
        o = json.loads(text)
    except ValueError as e:
        raise CatalogError("not JSON: %s" % e)
    try:
        name = o["name"]
        tid = _cat_int(o["id"], "id")
        columns = [Column(c["name"], _cat_int(c["id"], "column id"), c["type"],
                          bool(c["not_null"])) for c in o["columns"]]
        by_name = {c.name: c for c in columns}
        if len(by_name) != len(columns) or len({c.id for c in columns}) != len(columns):
            raise CatalogError("two columns share a name or an id")
        handle_name = o["handle"]
        if handle_name == HIDDEN_HANDLE:
            handle_col = None
        else:
            handle_col = by_name.get(handle_name)
            if handle_col is None or handle_col.kind != "int":
                raise CatalogError("handle '%s' is not a signed integer column" % handle_name)
        indexes = []
        for x in o.get("indexes", []):
            cols = []
            for cname in x["columns"]:
                if cname not in by_name:
                    raise CatalogError("index %s: no column '%s'" % (x["name"], cname))
                cols.append(by_name[cname])
            prefix = [_cat_int(p, "prefix") for p in x.get("prefix", [0] * len(cols))]
            if len(prefix) != len(cols):
                raise CatalogError("index %s: %d prefix lengths for %d columns"
                                   % (x["name"], len(prefix), len(cols)))
            for c, p in zip(cols, prefix):
                if p and (c.kind not in ("char", "varchar") or not 1 <= p <= c.length):
                    raise CatalogError("index %s: prefix %d does not fit column %s %s"
                                       % (x["name"], p, c.name, c.show_type()))
            indexes.append(Index(x["name"], _cat_int(x["id"], "index id"), cols, prefix,
                                 bool(x["unique"]), x.get("state", "public")))
    except (KeyError, TypeError) as e:
        raise CatalogError("missing or mistyped field %s" % e)
    if len({x.id for x in indexes}) != len(indexes):
        raise CatalogError("two indexes share an id")
    return TableDef(name, tid, columns, handle_col, indexes)


# --- byte decoders ---------------------------------------------------------

def take(b, pos, n, what):
    """b[pos:pos+n], or Malformed when b ends first."""
    if pos + n > len(b):
        raise Malformed("%s cut short: %d bytes left, %d needed" % (what, len(b) - pos, n))
    return b[pos:pos + n]


def decode_cmp_float(b):
    """A memcomparable double: TiDB sets the sign bit of values >= 0 and
    inverts every bit of negatives, so -0.0 encodes as 0.0 and the
    pattern that would decode to -0.0 (all ones but the top bit) is never
    written. NaN and infinities are not values a column holds."""
    u = int.from_bytes(b, "big")
    u = u ^ SIGN_FLIP if u & SIGN_FLIP else u ^ MASK64
    if u == SIGN_FLIP:
        raise Malformed("double encodes -0.0, which TiDB writes as 0.0")
    f = struct.unpack(">d", u.to_bytes(8, "big"))[0]
    if not math.isfinite(f):
        raise Malformed("double is %r" % f)
    return f


def decode_cmp_bytes(key, pos):
    """TiDB's EncodeBytes: 8-byte groups, each followed by a marker
    0xFF - (zero bytes padding the group); the first group with padding
    is the last. Returns (bytes, position after the datum)."""
    out = bytearray()
    while True:
        group = take(key, pos, 9, "bytes datum")
        pos += 9
        pad = 0xFF - group[8]
        if pad == 0:
            out += group[:8]
            continue
        if pad > 8:
            raise Malformed("bytes datum marker 0x%02x" % group[8])
        if any(group[8 - pad:8]):
            raise Malformed("bytes datum padding is not zero: %s" % group[:8].hex())
        out += group[:8 - pad]
        return bytes(out), pos


def decimal_size(prec, frac):
    intg = prec - frac
    return (intg // DIGITS_PER_WORD * 4 + DIG2BYTES[intg % DIGITS_PER_WORD]
            + frac // DIGITS_PER_WORD * 4 + DIG2BYTES[frac % DIGITS_PER_WORD])


def decode_bin_decimal(b, pos, prec, frac):
    """MySQL's binary decimal of DECIMAL(prec, frac) at b[pos:]: the integer
    digits right-aligned in words of 9 (the odd leading group in as few
    bytes as it needs), then the fraction digits left-aligned (the odd
    trailing group likewise), all big-endian; the first bit flipped and,
    for a negative number, every bit inverted. Returns (value scaled by
    10^frac as an int, position after it)."""
    size = decimal_size(prec, frac)
    raw = bytearray(take(b, pos, size, "DECIMAL(%d,%d)" % (prec, frac)))
    negative = not raw[0] & 0x80
    raw[0] ^= 0x80
    if negative:
        raw = bytearray(x ^ 0xFF for x in raw)
    intg = prec - frac
    groups = []  # (digits in the group, bytes it takes), in order
    if intg % DIGITS_PER_WORD:
        groups.append(intg % DIGITS_PER_WORD)
    groups += [DIGITS_PER_WORD] * (intg // DIGITS_PER_WORD)
    groups += [DIGITS_PER_WORD] * (frac // DIGITS_PER_WORD)
    if frac % DIGITS_PER_WORD:
        groups.append(frac % DIGITS_PER_WORD)
    digits = []
    at = 0
    for n in groups:
        nbytes = DIG2BYTES[n]
        v = int.from_bytes(raw[at:at + nbytes], "big")
        at += nbytes
        # Each group holds at most n digits: more means the bytes are not
        # a decimal of this precision.
        if v >= 10 ** n:
            raise Malformed("DECIMAL(%d,%d): a %d-digit group holds %d" % (prec, frac, n, v))
        digits.append("%0*d" % (n, v))
    value = int("".join(digits) or "0")
    if negative:
        if value == 0:
            raise Malformed("DECIMAL(%d,%d) is a negative zero" % (prec, frac))
        value = -value
    return value, pos + size


def unpack_datetime(p, fsp):
    """TiDB's packed DATETIME ((((y*13+m)<<5|d)<<17|h<<12|mi<<6|s)<<24|us)
    as (year, month, day, hour, minute, second, us); Malformed unless it is
    a real time of MySQL's range with at most fsp fraction digits."""
    us = p & 0xFFFFFF
    hms = (p >> 24) & 0x1FFFF
    ymd = p >> 41
    second, minute, hour = hms & 63, (hms >> 6) & 63, hms >> 12
    day = ymd & 31
    year, month = divmod(ymd >> 5, 13)
    t = (year, month, day, hour, minute, second, us)
    if not 1000 <= year <= 9999 or not 1 <= month <= 12:
        raise Malformed("DATETIME %r is out of range" % (t,))
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise Malformed("DATETIME %04d-%02d-%02d is not a date" % (year, month, day))
    if hour > 23 or minute > 59 or second > 59 or us > 999999:
        raise Malformed("DATETIME time %d:%d:%d.%d is out of range" % (hour, minute, second, us))
    if us % 10 ** (6 - fsp):
        raise Malformed("DATETIME(%d) has %06d microseconds" % (fsp, us))
    return t


def decode_le_int(b, signed, what):
    """A row-v2 integer: the fewest of 1, 2, 4 or 8 little-endian bytes
    that hold the value (sign-extended when signed)."""
    if len(b) not in (1, 2, 4, 8):
        raise Malformed("%s of %d bytes" % (what, len(b)))
    v = int.from_bytes(b, "little", signed=signed)
    for n in (1, 2, 4):
        if n >= len(b):
            break
        lo, hi = (-(1 << (8 * n - 1)), (1 << (8 * n - 1)) - 1) if signed else (0, (1 << 8 * n) - 1)
        if lo <= v <= hi:
            raise Malformed("%s %d in %d bytes, fits %d" % (what, v, len(b), n))
    return v


def check_value(col, v):
    """Raises Malformed unless v (decoded) is a value of col's type."""
    if col.kind in ("int", "uint"):
        if not col.lo <= v <= col.hi:
            raise Malformed("%d is out of range for %s" % (v, col.show_type()))
    elif col.kind in ("char", "varchar"):
        try:
            n = len(v.decode("utf-8"))
        except UnicodeDecodeError:
            raise Malformed("not UTF-8: %r" % v[:80])
        if n > col.length:
            raise Malformed("%d characters are too many for %s" % (n, col.show_type()))
    elif col.kind == "datetime":
        unpack_datetime(v, col.fsp)
    elif col.kind == "decimal":
        if abs(v) >= 10 ** col.prec:
            raise Malformed("%d is too wide for %s" % (v, col.show_type()))


def decode_row_value(col, b):
    """Column col's not-null value in a row-v2 value, decoded and checked."""
    if col.kind in ("int", "uint"):
        v = decode_le_int(b, col.kind == "int", "integer")
    elif col.kind in ("char", "varchar"):
        v = bytes(b)
    elif col.kind == "double":
        if len(b) != 8:
            raise Malformed("DOUBLE of %d bytes" % len(b))
        v = decode_cmp_float(b)
    elif col.kind == "datetime":
        v = decode_le_int(b, False, "DATETIME")
    else:  # decimal: precision, scale, then the binary form
        head = take(b, 0, 2, "DECIMAL header")
        if (head[0], head[1]) != (col.prec, col.frac):
            raise Malformed("DECIMAL(%d,%d) in a %s column" % (head[0], head[1], col.show_type()))
        v, end = decode_bin_decimal(b, 2, col.prec, col.frac)
        if end != len(b):
            raise Malformed("%d bytes after the DECIMAL" % (len(b) - end))
    check_value(col, v)
    return v


def decode_key_datum(col, key, pos):
    """The datum of column col at key[pos:], decoded and checked: (value or
    None for NULL, position after it)."""
    flag = take(key, pos, 1, "key before column %s" % col.name)[0]
    pos += 1
    if flag == FLAG_NULL:
        if col.not_null:
            raise Malformed("column %s: NULL in a NOT NULL column" % col.name)
        return None, pos
    if flag != KEY_FLAG[col.kind]:
        raise Malformed("column %s: datum flag 0x%02x, want 0x%02x for %s"
                        % (col.name, flag, KEY_FLAG[col.kind], col.show_type()))
    try:
        if col.kind == "int":
            v = decode_cmp_int(take(key, pos, 8, "int datum"))
            pos += 8
        elif col.kind in ("uint", "datetime"):
            v = int.from_bytes(take(key, pos, 8, "uint datum"), "big")
            pos += 8
        elif col.kind == "double":
            v = decode_cmp_float(take(key, pos, 8, "float datum"))
            pos += 8
        elif col.kind in ("char", "varchar"):
            v, pos = decode_cmp_bytes(key, pos)
        else:
            head = take(key, pos, 2, "DECIMAL header")
            if (head[0], head[1]) != (col.prec, col.frac):
                raise Malformed("DECIMAL(%d,%d) for a %s column"
                                % (head[0], head[1], col.show_type()))
            v, pos = decode_bin_decimal(key, pos + 2, col.prec, col.frac)
        check_value(col, v)
    except Malformed as e:
        raise Malformed("column %s: %s" % (col.name, e))
    return v, pos


def decode_table_row(table, handle, val):
    """A record of table (its handle from the key, val its row-v2 value) as
    one value per column, in schema order; None is NULL."""
    cols = decode_row_v2(val)
    if table.handle_col is not None and table.handle_col.id in cols:
        raise Malformed("the handle column %s (id %d) is in the row; it belongs in the key only"
                        % (table.handle_col.name, table.handle_col.id))
    known = {c.id for c in table.columns}
    unknown = sorted(set(cols) - known)
    if unknown:
        raise Malformed("column ids %s are not in table %s" % (unknown, table.name))
    values = []
    for c in table.columns:
        if c is table.handle_col:
            if not c.lo <= handle <= c.hi:
                raise Malformed("handle %d is out of range for %s %s"
                                % (handle, c.name, c.show_type()))
            values.append(handle)
            continue
        if c.id not in cols:
            # bfill writes NULLs into the null list, so a column that is
            # not there at all is an incomplete row.
            raise Malformed("column %s (id %d) is missing from the row" % (c.name, c.id))
        raw = cols[c.id]
        if raw is None:
            if c.not_null:
                raise Malformed("column %s: NULL in a NOT NULL column" % c.name)
            values.append(None)
            continue
        try:
            values.append(decode_row_value(c, raw))
        except Malformed as e:
            raise Malformed("column %s %s: %s" % (c.name, c.show_type(), e))
    if table.handle_col is None and handle < 1:
        raise Malformed("hidden %s %d is not positive" % (HIDDEN_HANDLE, handle))
    return values


def prefix_of(v, chars):
    """What a prefix index keeps of a string: its first `chars` UTF-8
    characters (all of it when 0 or shorter)."""
    if not chars or v is None:
        return v
    return v.decode("utf-8")[:chars].encode("utf-8")


def expected_entry(index, table, values, handle):
    """The (datums, handle) a row calls for in index."""
    pos = {c.id: i for i, c in enumerate(table.columns)}
    return tuple(prefix_of(values[pos[c.id]], p) for c, p in zip(index.cols, index.prefix)), handle


def decode_index_entry(index, key, val):
    """An entry of index as (datums, handle). Non-unique entries, and unique
    ones with a NULL datum, end their key with the handle as an int datum
    and hold '0'; other unique entries end after the datums and hold the
    handle as 8 bytes big-endian (plain two's complement)."""
    pos = INDEX_PREFIX_LEN
    datums = []
    for c, p in zip(index.cols, index.prefix):
        v, pos = decode_key_datum(c, key, pos)
        if p and v is not None and len(v.decode("utf-8")) > p:
            raise Malformed("column %s: %d characters in a %d-character prefix"
                            % (c.name, len(v.decode("utf-8")), p))
        datums.append(v)
    if not index.unique or None in datums:
        flag = take(key, pos, 1, "key before the handle")[0]
        if flag != FLAG_INT:
            raise Malformed("handle datum flag 0x%02x, want 0x%02x" % (flag, FLAG_INT))
        handle = decode_cmp_int(take(key, pos + 1, 8, "handle datum"))
        pos += 9
        if val != b"0":
            raise Malformed("value 0x%s, want '0' (0x30) when the handle is in the key" % val.hex())
    else:
        if len(val) != 8:
            raise Malformed("unique entry's value is %d bytes, want the 8-byte handle" % len(val))
        handle = int.from_bytes(val, "big", signed=True)
    if pos != len(key):
        raise Malformed("%d bytes after the %s" % (len(key) - pos, "handle" if (
            not index.unique or None in datums) else "datums of a unique entry"))
    return tuple(datums), handle


# --- text forms --------------------------------------------------------------

def escape_text(s):
    out = []
    for ch in s:
        if ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def format_value(col, v):
    """A decoded value as --dump prints it (see the module help)."""
    if v is None:
        return "\\N"
    if col.kind in ("int", "uint"):
        return str(v)
    if col.kind in ("char", "varchar"):
        # Decoded values are checked UTF-8; the replacement only keeps a
        # message about bad bytes printable.
        return escape_text(v.decode("utf-8", "backslashreplace"))
    if col.kind == "double":
        return repr(v)
    if col.kind == "datetime":
        y, mo, d, h, mi, s, us = unpack_datetime(v, col.fsp)
        text = "%04d-%02d-%02d %02d:%02d:%02d" % (y, mo, d, h, mi, s)
        if col.fsp:
            text += ".%0*d" % (col.fsp, us // 10 ** (6 - col.fsp))
        return text
    whole, part = divmod(abs(v), 10 ** col.frac)
    sign = "-" if v < 0 else ""
    return "%s%d.%0*d" % (sign, whole, col.frac, part) if col.frac else "%s%d" % (sign, whole)


def format_entry(index, datums, handle):
    return "(%s) handle %d" % (", ".join("%s=%s" % (c.name, format_value(c, v))
                                         for c, v in zip(index.cols, datums)), handle)


class Table:
    """The decodable rows of one table, in scan (key) order."""

    def __init__(self):
        self.handles = array("q")
        self.ks = array("q")


def expect_malformed(fn, *args):
    """Asserts that fn(*args) raises Malformed; returns its message."""
    try:
        fn(*args)
    except Malformed as e:
        return str(e)
    raise AssertionError("accepted: %s%r" % (fn.__name__, args))


def row_v2(notnull, null=()):
    """A small-form row-v2 value (test helper): notnull {id: bytes}, null ids."""
    ids = sorted(notnull)
    data, offs = b"", b""
    for cid in ids:
        data += notnull[cid]
        offs += len(data).to_bytes(2, "little")
    return (bytes([ROW_CODEC_VER, 0]) + len(ids).to_bytes(2, "little")
            + len(null).to_bytes(2, "little") + bytes(ids) + bytes(sorted(null)) + offs + data)


# A catalog record as bfill writes it (from a store made with
# `create-table --schema 'id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c BIGINT
# UNSIGNED, d DOUBLE, e DATETIME(6), f DECIMAL(12,2)'`, then
# `add-index --name ib --columns 'b(2),f'` and `--name iu --columns a --unique`).
SELF_TEST_CATALOG = (
    '{"name":"T","id":"100","handle":"id","next_index_id":"3","rows_hint":"2","columns":['
    '{"name":"id","id":"1","type":"bigint","not_null":true},'
    '{"name":"a","id":"2","type":"int","not_null":false},'
    '{"name":"b","id":"3","type":"varchar(64)","not_null":false},'
    '{"name":"c","id":"4","type":"bigint unsigned","not_null":false},'
    '{"name":"d","id":"5","type":"double","not_null":false},'
    '{"name":"e","id":"6","type":"datetime(6)","not_null":false},'
    '{"name":"f","id":"7","type":"decimal(12,2)","not_null":false}],"indexes":['
    '{"name":"ib","id":"1","columns":["b","f"],"prefix":["2","0"],"unique":false,'
    '"state":"public","job_id":"0"},'
    '{"name":"iu","id":"2","columns":["a"],"unique":true,"state":"public","job_id":"0"}]}')


def self_test_tables():
    """Golden vectors for the typed decoders, worked out by hand from the
    format rules (the derivations are in the comments)."""
    h = bytes.fromhex
    # DECIMAL(12,2): 10 integer digits = a 1-digit group (1 byte) and a
    # word; 2 fraction digits in 1 byte. 1234.5 -> 0 | 000001234 | 50 ->
    # 00 000004D2 32, first bit flipped -> 80 000004D2 32; the negative
    # inverts every byte.
    assert decode_bin_decimal(h("80000004D232"), 0, 12, 2) == (123450, 6)
    assert decode_bin_decimal(h("7FFFFFFB2DCD"), 0, 12, 2) == (-123450, 6)
    # DECIMAL(5,2) 999.99: 999 in 2 bytes (03E7), 99 in 1 (63).
    assert decode_bin_decimal(h("83E763"), 0, 5, 2) == (99999, 3)
    # DECIMAL(18,9): one word each side, 123456789 = 075BCD15, 987654321 = 3ADE68B1.
    assert decode_bin_decimal(h("875BCD153ADE68B1"), 0, 18, 9) == (123456789987654321, 8)
    # DECIMAL(10,0) zero: 1 + 4 bytes, only the flipped bit set.
    assert decode_bin_decimal(h("8000000000"), 0, 10, 0) == (0, 5)
    expect_malformed(decode_bin_decimal, h("803B9ACA0000"), 0, 12, 2)  # a word of 10^9
    expect_malformed(decode_bin_decimal, h("A71063"), 0, 5, 2)        # 10000 in 3 digits
    expect_malformed(decode_bin_decimal, h("800064"), 0, 5, 2)        # fraction 100 in 2
    expect_malformed(decode_bin_decimal, h("7FFFFFFFFFFF"), 0, 12, 2)  # negative zero
    expect_malformed(decode_bin_decimal, h("80000004D2"), 0, 12, 2)    # cut short
    dec = Column("f", 7, "decimal(12,2)", False)
    assert [format_value(dec, v) for v in (123450, -123450, 5, -5, 0)] == \
        ["1234.50", "-1234.50", "0.05", "-0.05", "0.00"]
    assert format_value(Column("g", 8, "decimal(10,0)", False), -7) == "-7"
    expect_malformed(decode_row_value, dec, h("0A02") + h("80000004D232"))  # says (10,2)
    expect_malformed(decode_row_value, dec, h("0C02") + h("80000004D23200"))  # trailing byte

    # Doubles: values >= 0 get the sign bit set, negatives are inverted.
    # 1.5 = 3FF8.., -1.5 = BFF8.. -> 4007FF..; 1e300 = 7E37E43C8800759C.
    for hexv, f, text in (("8000000000000000", 0.0, "0.0"), ("BFF8000000000000", 1.5, "1.5"),
                          ("4007FFFFFFFFFFFF", -1.5, "-1.5"),
                          ("FE37E43C8800759C", 1e300, "1e+300"),
                          ("8000000000000001", 5e-324, "5e-324")):
        got = decode_cmp_float(h(hexv))
        assert got == f and repr(got) == text, (hexv, got)
        assert format_value(Column("d", 5, "double", False), got) == text
    for bad in ("7FFFFFFFFFFFFFFF", "FFF0000000000000", "FFF8000000000000", "000FFFFFFFFFFFFF"):
        expect_malformed(decode_cmp_float, h(bad))  # -0.0, +inf, NaN, -inf

    # DATETIME: ((((2021*13+3)<<5|4)<<17 | 5<<12 | 6<<6 | 7) << 24) | 123456.
    packed = ((((2021 * 13 + 3) << 5 | 4) << 17 | 5 << 12 | 6 << 6 | 7) << 24) | 123456
    assert packed == 0x19A908518701E240
    assert unpack_datetime(packed, 6) == (2021, 3, 4, 5, 6, 7, 123456)
    e6 = Column("e", 6, "datetime(6)", False)
    assert format_value(e6, packed) == "2021-03-04 05:06:07.123456"
    assert decode_row_value(e6, h("40E201875108A919")) == packed  # rows: LE, 8 bytes
    e3 = Column("e", 6, "datetime(3)", False)
    assert format_value(e3, packed - 456) == "2021-03-04 05:06:07.123"
    expect_malformed(decode_row_value, e3, (packed).to_bytes(8, "little"))  # 6 digits in (3)
    assert format_value(Column("e", 6, "datetime", False), packed - 123456) == \
        "2021-03-04 05:06:07"

    def dt(y, mo, d, hh=0, mi=0, s=0, us=0):
        return ((((y * 13 + mo) << 5 | d) << 17 | hh << 12 | mi << 6 | s) << 24) | us
    assert unpack_datetime(dt(2024, 2, 29), 0) == (2024, 2, 29, 0, 0, 0, 0)
    for bad in (dt(2021, 2, 29), dt(2021, 0, 1), dt(2021, 13, 1), dt(999, 12, 31),
                dt(2021, 1, 1, 24), dt(2021, 1, 1, 0, 60), dt(2021, 1, 0),
                dt(2021, 1, 1, us=1000000)):
        expect_malformed(unpack_datetime, bad, 6)

    # Key bytes: 8-byte groups, marker 0xFF - padding.
    assert decode_cmp_bytes(h("01616263" "0000000000FA")[1:], 0) == (b"abc", 9)
    assert decode_cmp_bytes(h("0000000000000000F7"), 0) == (b"", 9)
    assert decode_cmp_bytes(h("0102030405060708FF" "0000000000000000F7"), 0) == \
        (bytes(range(1, 9)), 18)
    for bad in ("0000000000000000F6", "6162630000000001FA", "616263000000"):
        expect_malformed(decode_cmp_bytes, h(bad), 0)

    # Row-v2 integers: the fewest bytes that hold the value.
    assert decode_le_int(h("8000"), True, "i") == 128
    assert decode_le_int(h("80"), False, "u") == 128
    assert decode_le_int(h("FFFFFF00"), False, "u") == 16777215
    for bad, signed in (("0500", True), ("FFFF", True), ("FF00", False), ("010203", True),
                        ("0100000000000000", False)):
        expect_malformed(decode_le_int, h(bad), signed, "int")
    tiny = Column("t", 9, "tinyint unsigned", True)
    expect_malformed(decode_row_value, tiny, h("0001"))                   # 256 > 255
    assert decode_row_value(Column("m", 9, "mediumint", False), h("0000C0FF")) == -(1 << 22)
    expect_malformed(decode_row_value, Column("m", 9, "mediumint", False), h("0000800000"))
    vc = Column("b", 3, "varchar(3)", False)
    assert decode_row_value(vc, "äöü".encode()) == "äöü".encode()       # 3 chars, 6 bytes
    expect_malformed(decode_row_value, vc, b"abcd")
    expect_malformed(decode_row_value, vc, h("C3"))                       # not UTF-8
    assert escape_text("a\tb\\c\nd\x01\r") == "a\\tb\\\\c\\nd\\x01\\x0d"

    # A whole table: the catalog record and a store's keys for it.
    t = parse_table_record(SELF_TEST_CATALOG)
    assert (t.name, t.id, t.handle_col.name, [x.name for x in t.indexes]) == \
        ("T", 100, "id", ["ib", "iu"])
    ib, iu = t.indexes
    assert ib.prefix == [2, 0] and iu.prefix == [0] and iu.unique
    row1 = h("8000060000000203040506070100040005000D0015001D00" "05" "616263" "07"
             "BFF8000000000000" "40E201875108A919" "0C0280000004D232")
    row2 = h("800002000400" "0507" "02030406" "0800" "1000"
             "4007FFFFFFFFFFFF" "0C027FFFFFFB2DCD")
    v1, v2 = decode_table_row(t, 1, row1), decode_table_row(t, 2, row2)
    assert [format_value(c, v) for c, v in zip(t.columns, v1)] == \
        ["1", "5", "abc", "7", "1.5", "2021-03-04 05:06:07.123456", "1234.50"]
    assert [format_value(c, v) for c, v in zip(t.columns, v2)] == \
        ["2", "\\N", "\\N", "\\N", "-1.5", "\\N", "-1234.50"]
    prefix = h("7480000000000000645F69")  # 't' + table 100 + "_i"
    ib_key = prefix + h("8000000000000001" "016162000000000000F9" "060C0280000004D232"
                        "038000000000000001")
    assert decode_index_entry(ib, ib_key, b"0") == ((b"ab", 123450), 1)
    assert expected_entry(ib, t, v1, 1) == ((b"ab", 123450), 1)
    iu_key = prefix + h("8000000000000002" "038000000000000005")
    assert decode_index_entry(iu, iu_key, h("0000000000000001")) == ((5,), 1)
    iu_null = prefix + h("8000000000000002" "00" "038000000000000002")
    assert decode_index_entry(iu, iu_null, b"0") == ((None,), 2)
    assert expected_entry(iu, t, v2, 2) == ((None,), 2)
    for key, val in ((ib_key, b"1"), (ib_key + b"\x00", b"0"), (ib_key[:-9], b"0"),
                     (iu_key, h("000000000000000001")), (iu_key, b"0"),
                     (iu_null, h("0000000000000002")),
                     (prefix + h("8000000000000001" "016162630000000000FA" "060C0280000004D232"
                                 "038000000000000001"), b"0"),      # 'abc' in b(2)
                     (prefix + h("8000000000000001" "016162000000000000F9" "060A0280000004D232"
                                 "038000000000000001"), b"0"),      # DECIMAL(10,2)
                     (prefix + h("8000000000000002" "048000000000000005"), h("0000000000000001"))):
        expect_malformed(decode_index_entry, ib if key[11:19] == h("8000000000000001") else iu,
                         key, val)
    # Rows that do not fit the schema.
    b65 = b"x" * 65
    for bad in (row_v2({2: b"\x05", 3: b65, 4: b"\x07", 5: h("BFF8000000000000"),
                        6: h("40E201875108A919"), 7: h("0C0280000004D232")}),  # b too long
                row_v2({1: b"\x01", 2: b"\x05"}, (3, 4, 5, 6, 7)),             # handle in row
                row_v2({2: b"\x05", 9: b"\x01"}, (3, 4, 5, 6, 7)),             # unknown id 9
                row_v2({2: b"\x05"}, (3, 4, 5, 6)),                             # f missing
                row_v2({2: b"\x05\x00"}, (3, 4, 5, 6, 7)),                      # int not minimal
                row_v2({2: h("80000000")}, (3, 4, 5, 6, 7)),                    # 128: fits 2 bytes
                row_v2({2: h("0000008000000000")}, (3, 4, 5, 6, 7)),            # 2^31 > INT
                ):
        expect_malformed(decode_table_row, t, 3, bad)
    assert decode_table_row(t, 3, row_v2({4: h("00")}, (2, 3, 5, 6, 7))) == \
        [3, None, None, 0, None, None, None]
    nn = parse_table_record(
        '{"name":"u","id":"101","handle":"_tidb_rowid","columns":['
        '{"name":"k","id":"1","type":"smallint","not_null":true}],"indexes":[]}')
    assert nn.handle_col is None and nn.dump_header() == ["_tidb_rowid", "k"]
    assert decode_table_row(nn, 1, row_v2({1: b"\x07"})) == [7]
    expect_malformed(decode_table_row, nn, 1, row_v2({}, (1,)))   # NULL in NOT NULL
    expect_malformed(decode_table_row, nn, 0, row_v2({1: b"\x07"}))  # rowid 0
    for bad in ('{"name":"u"', '{"name":"u","id":"1","handle":"k","columns":['
                '{"name":"k","id":"1","type":"varchar(3)","not_null":true}],"indexes":[]}'):
        try:
            parse_table_record(bad)
        except CatalogError:
            continue
        raise AssertionError("accepted catalog record " + bad)
    try:
        Column("x", 1, "float", False)
        raise AssertionError("accepted type float")
    except UnknownType:
        pass


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
    self_test_tables()
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


# ---------------------------------------------------------------------------
# Table mode: the scan, the checks and the report.
# ---------------------------------------------------------------------------

class Problems:
    """Describes the first `show` problems on stderr, counts the rest."""

    def __init__(self, show):
        self.show = show
        self.count = 0

    def note(self, text):
        if self.count < self.show:
            sys.stderr.write(text + "\n")
        self.count += 1

    def key(self, what, key, why):
        self.note("malformed %s 0x%s: %s" % (what, key.hex().upper(), why))

    def finish(self):
        if self.count > self.show:
            sys.stderr.write("... and %d more problems\n" % (self.count - self.show))


class TableKeys:
    """The keys of one table id found in the scan."""

    def __init__(self):
        self.records = {}  # handle -> (key, value)
        self.entries = {}  # index id -> {key: value}
        self.bad = []      # (key, why): under the table's prefix but no record or entry

    def count(self):
        return len(self.records) + sum(map(len, self.entries.values())) + len(self.bad)


def read_scan(args, problems):
    """Sorts the scan into catalog records and per-table keys. Returns
    (keys, unparsed lines, {table name: (key, text)}, {table id: TableKeys},
    [(key, why)] for data keys of no table)."""
    keys = unparsed = 0
    catalog, tables, stray = {}, {}, []
    for line in scan_lines(args):
        line = line.rstrip("\n")
        if not line:
            continue
        m = LINE_RE.match(line)
        if not m:
            unparsed += 1
            problems.note("unparsed ldb output line: %.120s" % line)
            continue
        keys += 1
        key, val = bytes.fromhex(m.group(1)), bytes.fromhex(m.group(2))
        if key.startswith(CATALOG_TABLE_PREFIX):
            catalog[key[len(CATALOG_TABLE_PREFIX):].decode("utf-8", "replace")] = (key, val)
            continue
        if not key.startswith(b"t"):
            continue  # bfill's other metadata (jobs, counters)
        if len(key) < 11:
            stray.append((key, "a data key of %d bytes" % len(key)))
            continue
        t = tables.setdefault(decode_cmp_int(key[1:9]), TableKeys())
        kind = key[9:11]
        if kind == b"_r":
            if len(key) != RECORD_KEY_LEN:
                t.bad.append((key, "record key of %d bytes, want %d" % (len(key), RECORD_KEY_LEN)))
                continue
            handle = decode_cmp_int(key[11:19])
            if handle in t.records:
                t.bad.append((key, "the record key appears twice"))
                continue
            t.records[handle] = (key, val)
        elif kind == b"_i":
            if len(key) < INDEX_PREFIX_LEN:
                t.bad.append((key, "index key of %d bytes has no index id" % len(key)))
                continue
            ent = t.entries.setdefault(decode_cmp_int(key[11:19]), {})
            if key in ent:
                t.bad.append((key, "the index key appears twice"))
                continue
            ent[key] = val
        else:
            t.bad.append((key, "neither a record ('_r') nor an index ('_i') key"))
    return keys, unparsed, catalog, tables, stray


class IndexResult:
    def __init__(self, index, entries):
        self.index = index
        self.entries = entries
        self.checked = False
        self.note = ""
        self.expected = self.malformed = self.missing = self.extra = self.dups = 0

    def problems(self):
        return self.malformed + self.missing + self.extra + self.dups


def check_index(t, x, rows, found, bad_handles, problems):
    """Compares the entries found for index x with those rows call for."""
    r = IndexResult(x, len(found))
    r.checked = True
    where = "index %s of %s" % (x.name, t.name)
    expected = Counter()
    unique_owner = {}
    for handle, values in rows:
        datums, h = expected_entry(x, t, values, handle)
        expected[(datums, h)] += 1
        r.expected += 1
        # Two rows with one value of a unique index cannot both have their
        # entry: say so once, rather than only as a missing entry.
        if x.unique and None not in datums:
            if datums in unique_owner:
                r.dups += 1
                problems.note("%s: rows %d and %d share the unique value %s"
                              % (where, unique_owner[datums], h, format_entry(x, datums, h)))
            else:
                unique_owner[datums] = h
    rows_by_handle = dict(rows)
    for key in sorted(found):
        try:
            datums, h = decode_index_entry(x, key, found[key])
        except Malformed as e:
            r.malformed += 1
            problems.key("index entry", key, "%s: %s" % (where, e))
            continue
        if expected[(datums, h)] > 0:
            expected[(datums, h)] -= 1
        elif h in bad_handles:
            pass  # its row is malformed and already reported
        else:
            r.extra += 1
            if h in rows_by_handle:
                why = "row %d calls for %s" % (h, format_entry(
                    x, *expected_entry(x, t, rows_by_handle[h], h)))
            else:
                why = "there is no row %d" % h
            problems.note("%s: extra entry 0x%s %s: %s"
                          % (where, key.hex().upper(), format_entry(x, datums, h), why))
    for (datums, h), n in sorted(expected.items(), key=lambda kv: kv[0][1]):
        if n > 0:
            r.missing += n
            problems.note("%s: missing entry %s" % (where, format_entry(x, datums, h)))
    return r


def check_table(t, keys, wanted, problems):
    """Decodes every row of table t and checks the indexes in wanted.
    Returns (good rows as [(handle, values)], malformed keys, [IndexResult])."""
    malformed = 0
    for key, why in keys.bad:
        malformed += 1
        problems.key("key", key, "table %s: %s" % (t.name, why))
    rows, bad_handles = [], set()
    for handle in sorted(keys.records):
        key, val = keys.records[handle]
        try:
            rows.append((handle, decode_table_row(t, handle, val)))
        except Malformed as e:
            malformed += 1
            bad_handles.add(handle)
            problems.key("record", key, "table %s: %s" % (t.name, e))
    known = {x.id for x in t.indexes}
    for iid in sorted(set(keys.entries) - known):
        for key in sorted(keys.entries[iid]):
            malformed += 1
            problems.key("index entry", key, "table %s has no index with id %d" % (t.name, iid))
    results = []
    for x in t.indexes:
        found = keys.entries.get(x.id, {})
        if x in wanted:
            results.append(check_index(t, x, rows, found, bad_handles, problems))
        else:
            r = IndexResult(x, len(found))
            r.note = ("not checked (state %s)" % x.state if x.state != "public"
                      else "not checked (not asked for)")
            results.append(r)
    return rows, malformed, results


def table_mode(args):
    problems = Problems(args.show)
    nkeys, unparsed, catalog, data, stray = read_scan(args, problems)
    src_name = args.db if args.db else args.input

    def usage_fail(msg):
        sys.stderr.write("ldb_decode: %s\n" % msg)
        return 2

    names = sorted(catalog) if args.catalog else args.table
    defs = {}
    failed = 0  # problems that are not one table's
    for name in names:
        if name not in catalog:
            return usage_fail("no table '%s' in the catalog of %s (it has: %s)"
                              % (name, src_name, ", ".join(sorted(catalog)) or "none"))
        key, text = catalog[name]
        try:
            t = parse_table_record(text)
            if t.name != name:
                raise CatalogError("record says name '%s'" % t.name)
        except UnknownType as e:
            return usage_fail("table %s: %s: cannot check it" % (name, e))
        except CatalogError as e:
            failed += 1
            problems.key("catalog record", key, "table %s: %s" % (name, e))
            continue
        defs[name] = t
    wanted = {}
    for name, t in defs.items():
        if args.index:
            by_name = {x.name: x for x in t.indexes}
            for iname in args.index:
                if iname not in by_name:
                    return usage_fail("table %s has no index '%s' (it has: %s)"
                                      % (name, iname, ", ".join(sorted(by_name)) or "none"))
            wanted[name] = [by_name[i] for i in args.index]
        else:
            wanted[name] = [x for x in t.indexes if x.state == "public"]

    # Data that belongs to no table: with --catalog every table is looked
    # at, so keys of an id the catalog does not list are strays.
    if args.catalog:
        listed = {t.id for t in defs.values()}
        for key, why in stray:
            failed += 1
            problems.key("key", key, why)
        for tid in sorted(set(data) - listed):
            for key in [k for k, _ in data[tid].records.values()] + [
                    k for ent in data[tid].entries.values() for k in ent] + [
                    k for k, _ in data[tid].bad]:
                failed += 1
                problems.key("key", key, "table id %d is not in the catalog" % tid)
    if unparsed:
        failed += unparsed

    out = sys.stderr if args.dump else sys.stdout
    out.write("ldb scan of %s: %d keys\n" % (src_name, nkeys))
    if unparsed:
        out.write("unparsed lines: %d\n" % unparsed)
    good_rows = 0
    for name in names:
        t = defs.get(name)
        if t is None:
            out.write("table %s: catalog record unreadable, not checked\n" % name)
            continue
        rows, malformed, results = check_table(t, data.get(t.id, TableKeys()), wanted[name],
                                               problems)
        good_rows += len(rows)
        failed += malformed
        out.write("table %s (id %d, handle %s): %d rows, %d malformed\n"
                  % (t.name, t.id, t.handle_col.name if t.handle_col else HIDDEN_HANDLE,
                     len(rows), malformed))
        for r in results:
            x = r.index
            if r.checked:
                failed += r.problems()
                out.write("index %s (id %d; %s): %d entries, %d expected, %d malformed, "
                          "%d missing, %d extra%s\n"
                          % (x.name, x.id, x.describe(), r.entries, r.expected, r.malformed,
                             r.missing, r.extra,
                             ", %d duplicate values" % r.dups if r.dups else ""))
            else:
                out.write("index %s (id %d; %s): %d entries, %s\n"
                          % (x.name, x.id, x.describe(), r.entries, r.note))
        if args.dump:
            w = sys.stdout.buffer
            w.write(("\t".join(t.dump_header()) + "\n").encode("utf-8"))
            for handle, values in rows:
                fields = [format_value(c, v) for c, v in zip(t.columns, values)]
                if t.handle_col is None:
                    fields.insert(0, str(handle))
                w.write(("\t".join(fields) + "\n").encode("utf-8"))
            w.flush()
    problems.finish()
    if args.expect is not None and good_rows != args.expect:
        failed += 1
        sys.stderr.write("ldb_decode: %d well-formed rows, expected %d\n"
                         % (good_rows, args.expect))
    out.write("result: %s\n" % ("OK" if not failed else
                                 "FAILED, %d problem%s" % (failed, "" if failed == 1 else "s")))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="store directory to scan with ldb")
    src.add_argument("--input", help="saved `ldb --hex scan` output ('-' = stdin)")
    src.add_argument("--self-test", action="store_true", help="check the decoders on golden vectors")
    ap.add_argument("--ldb", default="ldb", help="the ldb binary (default: ldb in PATH)")
    ap.add_argument("--rows", type=int, help="N: k must be in [1, N] and handles 1..N")
    ap.add_argument("--expect", type=int, help="exit 1 unless exactly this many rows are well-formed")
    ap.add_argument("--show", type=int, default=5,
                    help="malformed entries / problems to describe (default 5)")
    tm = ap.add_argument_group("table mode", "check tables by their schema in bfill's catalog")
    tm.add_argument("--table", action="append", metavar="T",
                    help="check table T (repeatable) and its public indexes")
    tm.add_argument("--catalog", action="store_true",
                    help="check every table in the catalog and all their public indexes")
    tm.add_argument("--index", action="append", metavar="I",
                    help="with one --table: check index I (repeatable) instead of all public ones")
    tm.add_argument("--dump", action="store_true",
                    help="with one --table: print its decoded rows to stdout as TSV "
                         "(the summary then goes to stderr)")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.table or args.catalog:
        if args.table and args.catalog:
            ap.error("--table and --catalog exclude each other")
        if args.rows is not None:
            ap.error("--rows is for the sbtest mode")
        if (args.index or args.dump) and (not args.table or len(args.table) != 1):
            ap.error("--index and --dump need exactly one --table")
        return table_mode(args)
    if args.index or args.dump:
        ap.error("--index and --dump need --table")

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
