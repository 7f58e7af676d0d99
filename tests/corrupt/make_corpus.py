#!/usr/bin/env python3
"""make_corpus.py -- writes the corrupt-file corpus and its MANIFEST.

The corpus is damaged copies of the golden files (tests/data/golden_v4.swi
and golden_v3.swi), each with the status sw_load must give and what
sw_open_mmap must do, in MANIFEST, one line a file:

    name  sw_load-status  sw_open_mmap  what the damage is

sw_open_mmap is "same" (the status of sw_load), "mmap-ok-verify-fails"
(the damage lies in the layer-0 records, which a mapped open does not
read: it opens, and sw_verify must then say SW_ECORRUPT), or a status.
tests/test_corrupt.c replays the lot.

Why fixed files rather than damage made at test time (as test_crafted.c
and test_persist.c do): these are bytes a reader of any later version must
keep refusing, pinned in the tree the way the golden files pin what it
must keep reading; a change to the writer cannot quietly change what they
test.  The expectations come from the format's specification (the comment
at the top of src/persist.c), computed here from the damage, never by
running the library.

Kinds: truncation (at every section boundary, inside the header, the
table and the footer, 0 and 1 bytes, and 30 points spread over the file);
single bytes flipped in the header, each section, the gaps, the table and
the footer, checksums left stale; counts and lengths made huge and wrong
magic, versions and feature bits, and bad links, each with every checksum
recomputed so that the loader's own checks must refuse them; and a few of
each for the old single-stream format.  170 files of at most 12.6 KB,
1.4 MB in all: the budget of a commit, not of a fuzzer (which has its own
corpus, tests/fuzz/).

Python 3 standard library only.  Run from anywhere:
    python3 tests/corrupt/make_corpus.py
It deletes the *.swi files it finds in tests/corrupt first, so the corpus
is always exactly what the manifest lists.
"""
import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data")

# ---- CRC-32C (Castagnoli), as the file stores it --------------------------

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def u32(f, off):
    return struct.unpack_from("<I", f, off)[0]


def u64(f, off):
    return struct.unpack_from("<Q", f, off)[0]


def put32(f, off, v):
    struct.pack_into("<I", f, off, v & 0xFFFFFFFF)


def put64(f, off, v):
    struct.pack_into("<Q", f, off, v & 0xFFFFFFFFFFFFFFFF)


# ---- format 4 ---------------------------------------------------------------

SEC_NAMES = {1: "META", 2: "LABELS", 3: "LEVELS", 4: "TOMBSTONES", 5: "UPPER", 6: "NODES"}


class V4:
    """The layout of a format 4 file, read from the file."""

    def __init__(self, f):
        assert f[:8] == b"SWALLIDX" and u32(f, 8) == 4 and f[-8:] == b"SWIDXEND"
        self.len = len(f)
        self.dim, self.M, self.M0 = u32(f, 24), u32(f, 36), u32(f, 40)
        self.count, self.tombs = u64(f, 72), u64(f, 80)
        self.entry, self.max_level = u32(f, 88), struct.unpack_from("<i", f, 92)[0]
        self.rec, self.vec, self.loff = u32(f, 96), u32(f, 100), u32(f, 104)
        self.table, self.nsec = u64(f, self.len - 32), u32(f, self.len - 24)
        self.secs = []
        for k in range(self.nsec):
            e = self.table + 32 * k
            t, a, off, ln, fl, crc = struct.unpack_from("<IIQQII", f, e)
            self.secs.append(dict(type=t, arg=a, off=off, len=ln, flags=fl, crc=crc, entry=e))

    def sec(self, t, arg=0):
        for s in self.secs:
            if s["type"] == t and s["arg"] == arg:
                return s
        raise KeyError((t, arg))

    def name(self, s):
        n = SEC_NAMES.get(s["type"], "type %d" % s["type"])
        return n + (" %d" % s["arg"] if s["type"] == 5 else "")

    def upper_list(self, f, layer, node):
        """Offset of node's degree word in the section of layer >= 1."""
        s = self.sec(5, layer)
        levels = self.sec(3)
        p = s["off"]
        for i in range(self.count):
            if f[levels["off"] + i] < layer:
                continue
            if i == node:
                return p
            p += 4 + 4 * u32(f, p)
        raise KeyError(node)


def reseal4(f):
    """Every checksum of a format 4 file recomputed (for the bounds inside it)."""
    put32(f, 124, crc32c(f[:124]))
    n = len(f)
    table, k = u64(f, n - 32), u32(f, n - 24)
    if table < 128 or table + 32 * k > n - 32:
        return
    for i in range(k):
        e = table + 32 * i
        off, ln = u64(f, e + 8), u64(f, e + 16)
        if off + ln <= n:
            put32(f, e + 28, crc32c(f[off:off + ln]))
    put32(f, n - 20, crc32c(f[table:table + 32 * k]))


# ---- the corpus -------------------------------------------------------------

class Corpus:
    def __init__(self):
        self.entries = []
        self.names = set()

    def add(self, name, data, status, mmap, what):
        assert name not in self.names, name
        assert " " not in name and status.startswith("SW_")
        self.names.add(name)
        self.entries.append((name + ".swi", bytes(data), status, mmap, what))


def where4(L, pos):
    """Which part of a format 4 file byte pos is in, in words."""
    if pos < 128:
        return "the header"
    if pos >= L.len - 32:
        return "the footer"
    if pos >= L.table:
        return "the section table"
    for s in L.secs:
        if s["off"] <= pos < s["off"] + s["len"]:
            return "section %s" % L.name(s)
    return "the zero gap between sections"


def v4_corpus(C, g):
    L = V4(g)
    n = L.len
    nodes, labels, levels = L.sec(6), L.sec(2), L.sec(3)

    # -- truncation: every boundary, inside each part, spread points
    cuts = {0: "empty file", 1: "1 byte (inside the magic)", 7: "inside the magic",
            8: "after the magic, before the version", 11: "inside the version",
            12: "after the version (shorter than a header)", 100: "inside the header",
            127: "one byte short of a header", 128: "right after the header",
            159: "one byte short of a header and a footer"}
    for s in L.secs:
        cuts.setdefault(s["off"], "at the start of section %s" % L.name(s))
        cuts.setdefault(s["off"] + s["len"], "at the end of section %s" % L.name(s))
        cuts.setdefault(s["off"] + s["len"] // 2, "inside section %s" % L.name(s))
    cuts.setdefault(L.table + 16, "inside the section table")
    cuts.setdefault(L.table + 32 * (L.nsec // 2), "between two entries of the section table")
    cuts.setdefault(n - 32, "at the start of the footer (no footer)")
    cuts.setdefault(n - 16, "inside the footer")
    cuts.setdefault(n - 8, "inside the footer's magic")
    cuts.setdefault(n - 1, "one byte short")
    for i in range(1, 31):
        p = i * n // 31
        cuts.setdefault(p, "inside %s" % where4(L, p))
    for p in sorted(cuts):
        assert p < n
        C.add("v4_trunc_%05d" % p, g[:p], "SW_ECORRUPT", "same",
              "truncated to %d of %d bytes: %s" % (p, n, cuts[p]))

    # -- single bytes flipped, checksums stale
    def flip(name, pos, what, status="SW_ECORRUPT", mmap="same", x=0x10):
        f = bytearray(g)
        f[pos] ^= x
        C.add("v4_flip_%s_%05d" % (name, pos), f, status, mmap,
              "byte %d of %d flipped (checksum stale): %s" % (pos, n, what))

    for pos, what in [(3, "the magic"), (12, "the header size"), (16, "the required features"),
                      (20, "the optional features"), (24, "dim"), (36, "M"), (72, "the node count"),
                      (88, "the entry point"), (92, "the max level"), (96, "the record size"),
                      (110, "a reserved byte"), (124, "the header checksum")]:
        flip("header", pos, what)
    for s in L.secs:
        if s["type"] == 6:
            continue
        flip(SEC_NAMES[s["type"]].lower(), s["off"] + s["len"] // 2,
             "inside section %s" % L.name(s))
    rec5 = nodes["off"] + 5 * L.rec
    for pos, what in [(rec5 + 1, "a vector of the layer-0 records"),
                      (rec5 + L.loff, "a layer-0 degree"),
                      (rec5 + L.loff + 4, "a layer-0 link"),
                      (rec5 + L.rec - 1, "a record's zero padding"),
                      (nodes["off"] + nodes["len"] - 64, "the last record")]:
        flip("nodes", pos, what + " (a mapped open does not read them)",
             mmap="mmap-ok-verify-fails")
    gaps = []
    for a, b in zip(L.secs, L.secs[1:]):
        if a["off"] + a["len"] < b["off"]:
            gaps.append((a["off"] + a["len"], L.name(a)))
    for pos, after in gaps[:3]:
        flip("gap", pos, "the zero gap after section %s" % after)
    for k, fld in [(0, 0), (1, 8), (2, 16), (4, 4), (5, 24), (L.nsec - 1, 28)]:
        e = L.table + 32 * k
        flip("table", e + fld, "entry %d of the section table (%s)" %
             (k, {0: "type", 4: "argument", 8: "offset", 16: "length", 24: "flags",
                  28: "checksum"}[fld]))
    for fld, what in [(0, "table offset"), (8, "section count"), (12, "table checksum"),
                      (16, "file length"), (27, "magic")]:
        flip("footer", n - 32 + fld, "the footer's %s" % what)

    # -- edits with every checksum recomputed: the field checks must refuse
    def edit(name, what, fn, status="SW_ECORRUPT", mmap="same", reseal=True):
        f = bytearray(g)
        fn(f)
        if reseal:
            reseal4(f)
        C.add("v4_" + name, f, status, mmap, what + (" (resealed)" if reseal else ""))

    edit("huge_count_2p40", "node count 2^40", lambda f: put64(f, 72, 1 << 40))
    edit("huge_count_2p32", "node count 2^32", lambda f: put64(f, 72, 1 << 32))
    edit("huge_count_u32max", "node count 2^32 - 1", lambda f: put64(f, 72, 0xFFFFFFFF))
    edit("huge_count_u32max_1", "node count 2^32 - 2 (sections far too short)",
         lambda f: put64(f, 72, 0xFFFFFFFE))
    edit("huge_count_u64max", "node count 2^64 - 1", lambda f: put64(f, 72, (1 << 64) - 1))
    edit("huge_count_plus1", "node count one more", lambda f: put64(f, 72, L.count + 1))
    edit("huge_tombs", "tombstone count 2^64 - 1", lambda f: put64(f, 80, (1 << 64) - 1))
    edit("huge_max_level", "max level 2^31 - 1", lambda f: put32(f, 92, 0x7FFFFFFF))
    edit("huge_dim", "dim 65536 (the record layout no longer fits)", lambda f: put32(f, 24, 65536))
    edit("huge_m0", "M0 2048 (the record layout no longer fits)", lambda f: put32(f, 40, 2048))
    edit("huge_nsec", "section count 2^32 - 1", lambda f: put32(f, n - 24, 0xFFFFFFFF))
    edit("huge_nodes_len", "records section length 2^63",
         lambda f: put64(f, nodes["entry"] + 16, 1 << 63))
    edit("huge_labels_len", "labels section length 2^64 - 1",
         lambda f: put64(f, labels["entry"] + 16, (1 << 64) - 1))
    edit("huge_meta_len", "metadata section length 2^40",
         lambda f: put64(f, L.sec(1)["entry"] + 16, 1 << 40))
    edit("huge_table_off", "table offset 2^64 - 64", lambda f: put64(f, n - 32, (1 << 64) - 64))

    # A table offset that wraps round 2^64 to land exactly on the footer:
    # the header alone, 32 zero bytes and a footer that claims 7 sections
    # at 2^64 - 64 (7 x 32 - 64 = 160 = the file's length - 32).  Once
    # crashed both loaders (the sum was checked, not the offset alone).
    def wrapped(f):
        tail = bytearray(32)
        put64(tail, 0, (1 << 64) - 64)
        put32(tail, 8, 7)
        put64(tail, 16, 192)
        tail[24:32] = b"SWIDXEND"
        f[:] = f[:128] + bytes(32) + tail
    edit("wrap_table_off", "table offset 2^64 - 64 that wraps to the footer (192-byte file)",
         wrapped, reseal=False)

    edit("magic_y", "magic SWALLIDY", lambda f: f.__setitem__(7, ord("Y")), reseal=False)
    edit("magic_zero", "magic all zero", lambda f: f.__setitem__(slice(0, 8), bytes(8)),
         reseal=False)
    edit("magic_footer", "magic SWIDXEND at the start",
         lambda f: f.__setitem__(slice(0, 8), b"SWIDXEND"), reseal=False)
    edit("magic_end", "the footer's magic SWIDXENX",
         lambda f: f.__setitem__(n - 1, ord("X")))

    edit("version_5", "format version 5", lambda f: put32(f, 8, 5), "SW_EVERSION")
    edit("version_5_stale", "format version 5, header checksum stale (the version is read "
         "first: a newer header may be another shape)", lambda f: put32(f, 8, 5),
         "SW_EVERSION", reseal=False)
    edit("version_0", "format version 0", lambda f: put32(f, 8, 0), "SW_EVERSION")
    edit("version_u32max", "format version 2^32 - 1", lambda f: put32(f, 8, 0xFFFFFFFF),
         "SW_EVERSION")
    edit("version_3", "format version 3 on a format 4 file (the old reader finds the header "
         "the wrong size; old versions are never mapped)", lambda f: put32(f, 8, 3),
         "SW_ECORRUPT", "SW_EVERSION")
    edit("feature_required", "an unknown required feature bit", lambda f: put32(f, 16, 4),
         "SW_EVERSION")
    edit("section_required", "an unknown section type with the required flag",
         lambda f: (put32(f, L.sec(1)["entry"], 77), put32(f, L.sec(1)["entry"] + 24, 1)),
         "SW_EVERSION")

    # -- bad links
    d2 = next(i for i in range(L.count) if u32(g, nodes["off"] + i * L.rec + L.loff) >= 2)
    deg = nodes["off"] + d2 * L.rec + L.loff
    rec = "node %d's layer-0 list: " % d2
    mm = "mmap-ok-verify-fails"
    edit("link0_degree", rec + "degree M0 + 1", lambda f: put32(f, deg, L.M0 + 1), mmap=mm)
    edit("link0_degree_huge", rec + "degree 2^32 - 1", lambda f: put32(f, deg, 0xFFFFFFFF),
         mmap=mm)
    edit("link0_range", rec + "a link to node count", lambda f: put32(f, deg + 4, L.count),
         mmap=mm)
    edit("link0_huge", rec + "a link 2^32 - 1", lambda f: put32(f, deg + 4, 0xFFFFFFFF), mmap=mm)
    edit("link0_self", rec + "a link to itself", lambda f: put32(f, deg + 4, d2), mmap=mm)
    edit("link0_twice", rec + "the same link twice",
         lambda f: put32(f, deg + 8, u32(g, deg + 4)), mmap=mm)
    lv = levels["off"]
    up = next(i for i in range(L.count)
              if g[lv + i] >= 1 and u32(g, L.upper_list(g, 1, i)) >= 2)
    flat = next(i for i in range(L.count) if g[lv + i] == 0)
    u = L.upper_list(g, 1, up)
    rec = "node %d's layer-1 list: " % up
    edit("link1_degree", rec + "degree M + 1", lambda f: put32(f, u, L.M + 1))
    edit("link1_range", rec + "a link to node count", lambda f: put32(f, u + 4, L.count))
    edit("link1_flat", rec + "a link to node %d, which is not on layer 1" % flat,
         lambda f: put32(f, u + 4, flat))
    edit("link1_twice", rec + "the same link twice", lambda f: put32(f, u + 8, u32(g, u + 4)))


def v3_corpus(C, g):
    n = len(g)
    assert g[:8] == b"SWALLIDX" and u32(g, 8) == 3
    meta = u32(g, 80)
    first = 84 + meta  # the first node record
    for p, what in [(0, "empty file"), (8, "after the magic"),
                    (11, "inside the version"), (12, "inside the header"),
                    (79, "one byte short of the header"), (84, "after the metadata length"),
                    (first + 5, "inside the first node"), (n // 2, "in the middle of the nodes"),
                    (n - 4, "without its checksum"), (n - 1, "one byte short")]:
        # a file that shows a known old version is refused by a mapped open
        mmap = "SW_EVERSION" if p >= 12 else "same"
        C.add("v3_trunc_%05d" % p, g[:p], "SW_ECORRUPT", mmap,
              "format 3, truncated to %d of %d bytes: %s" % (p, n, what))
    for pos, what in [(16, "dim"), (28, "M"), (64, "the node count"), (80, "the metadata "
                      "length"), (first + 2, "a label"), (first + 9, "a vector"),
                      (n // 2, "a node record"), (n - 2, "the checksum")]:
        f = bytearray(g)
        f[pos] ^= 0x10
        C.add("v3_flip_%05d" % pos, f, "SW_ECORRUPT", "SW_EVERSION",
              "format 3, byte %d flipped (checksum stale): %s" % (pos, what))
    f = bytearray(g)
    f[3] ^= 0x10
    C.add("v3_magic", f, "SW_ECORRUPT", "same", "format 3 with a wrong magic")
    f = bytearray(g)
    put32(f, 8, 5)
    C.add("v3_version_5", f, "SW_EVERSION", "same", "format 3 file saying version 5")
    for value, what in [(1 << 40, "2^40"), (0xFFFFFFFF, "2^32 - 1"), (1000, "1000")]:
        f = bytearray(g)
        put64(f, 64, value)
        put32(f, n - 4, crc32c(f[:n - 4]))
        C.add("v3_count_%d" % value, f, "SW_ECORRUPT", "SW_EVERSION",
              "format 3, node count %s (resealed)" % what)


def main():
    with open(os.path.join(DATA, "golden_v4.swi"), "rb") as fh:
        g4 = bytearray(fh.read())
    with open(os.path.join(DATA, "golden_v3.swi"), "rb") as fh:
        g3 = bytearray(fh.read())
    C = Corpus()
    v4_corpus(C, g4)
    v3_corpus(C, g3)
    for old in glob.glob(os.path.join(HERE, "*.swi")):
        os.remove(old)
    total = 0
    lines = [
        "# The corrupt-file corpus: written by make_corpus.py (its docstring says why",
        "# and how); regenerate rather than edit.  One file a line:",
        "#   name  sw_load-status  sw_open_mmap  what",
        "# sw_open_mmap: \"same\" (sw_load's status), \"mmap-ok-verify-fails\" (the",
        "# damage is in the layer-0 records: a mapped open serves them and sw_verify",
        "# must say SW_ECORRUPT), or a status.  tests/test_corrupt.c replays it.",
    ]
    for name, data, status, mmap, what in C.entries:
        with open(os.path.join(HERE, name), "wb") as fh:
            fh.write(data)
        total += len(data)
        lines.append("%s %s %s %s" % (name, status, mmap, what))
    with open(os.path.join(HERE, "MANIFEST"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("%d files, %d bytes" % (len(C.entries), total), file=sys.stderr)


if __name__ == "__main__":
    main()
