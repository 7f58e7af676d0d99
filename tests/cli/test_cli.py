#!/usr/bin/env python3
"""End-to-end tests of the `smallworld` command-line program.

Runs the built binary (the first argument, or $SW_CLI_BIN, which a
sanitizer run sets to its own build) on data generated here, in every input
format, and checks what it prints, what it writes and how it exits.  Only
the standard library: .npy and the binary formats are written by hand.

    python3 tests/cli/test_cli.py build/smallworld [-v] [name-substring ...]

Each check asserts behaviour that could fail; none depends on timing.
"""
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import traceback

BIN = os.environ.get("SW_CLI_BIN") or (sys.argv[1] if len(sys.argv) > 1 else "build/smallworld")
BIN = os.path.abspath(BIN)
SHARED = os.environ.get("SW_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
VERBOSE = "-v" in sys.argv[2:]
SELECT = [a for a in sys.argv[2:] if a != "-v"]

EXIT_FAIL, EXIT_USAGE, EXIT_DATA, EXIT_INDEX = 1, 2, 3, 4


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(*args, expect=0, stdin=None):
    """Run the program; check its exit status; return (stdout, stderr)."""
    p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True,
                       errors="replace", input=stdin, timeout=600)
    if VERBOSE:
        print("  $ smallworld", " ".join(str(a) for a in args), "->", p.returncode)
    if p.returncode < 0:
        raise Failure(f"{args}: killed by signal {-p.returncode}\n{p.stderr}")
    if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        raise Failure(f"{args}: sanitizer report\n{p.stderr}")
    if p.returncode != expect:
        raise Failure(f"{args}: exit {p.returncode}, expected {expect}\n"
                      f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    if expect != 0:
        lines = p.stderr.splitlines()
        check(len(lines) == 1 and lines[0].startswith("smallworld: "),
              f"{args}: a failure must print one 'smallworld: ' line, got {p.stderr!r}")
    return p.stdout, p.stderr


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ==== Writing every format by hand ====

def write_vecs(path, rows, code):
    with open(path, "wb") as f:
        for r in rows:
            f.write(struct.pack("<i", len(r)) + struct.pack("<%d%s" % (len(r), code), *r))


def write_bin(path, rows, code):
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", len(rows), len(rows[0])))
        for r in rows:
            f.write(struct.pack("<%d%s" % (len(r), code), *r))


def npy_bytes(rows, descr, code, version=1, fortran=False, shape=None):
    shape = shape if shape is not None else (len(rows), len(rows[0]))
    shape_txt = "(%s)" % ", ".join(str(s) for s in shape) if len(shape) != 1 else "(%d,)" % shape[0]
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_txt)
    pre = 10 if version == 1 else 12
    pad = 64 - (pre + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode()
    out = b"\x93NUMPY" + bytes([version, 0])
    out += struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    out += header
    for r in rows:
        out += struct.pack("<%d%s" % (len(r), code), *r)
    return out


def write_npy(path, rows, descr, code, **kw):
    with open(path, "wb") as f:
        f.write(npy_bytes(rows, descr, code, **kw))


def write_text(path, rows, sep):
    with open(path, "w") as f:
        for r in rows:
            f.write(sep.join(repr(float(x)) if isinstance(x, float) else str(x) for x in r) + "\n")


# format name -> (extension, writer(path, rows)); values are small integers
# so that every element type holds them exactly: 0..100 for the unsigned
# byte formats, -50..50 for the others (negative values catch a signed type
# read as unsigned).
UNSIGNED = {"bvecs", "u8bin", "npy-u8"}
FORMATS = {
    "fvecs": ("fvecs", lambda p, r: write_vecs(p, r, "f")),
    "bvecs": ("bvecs", lambda p, r: write_vecs(p, r, "B")),
    "ivecs": ("ivecs", lambda p, r: write_vecs(p, r, "i")),
    "fbin": ("fbin", lambda p, r: write_bin(p, r, "f")),
    "u8bin": ("u8bin", lambda p, r: write_bin(p, r, "B")),
    "i8bin": ("i8bin", lambda p, r: write_bin(p, r, "b")),
    "ibin": ("ibin", lambda p, r: write_bin(p, r, "i")),
    "npy-f32": ("npy", lambda p, r: write_npy(p, r, "<f4", "f")),
    "npy-f16": ("npy", lambda p, r: write_npy(p, r, "<f2", "e")),
    "npy-u8": ("npy", lambda p, r: write_npy(p, r, "|u1", "B", version=2)),
    "npy-i8": ("npy", lambda p, r: write_npy(p, r, "|i1", "b")),
    "csv": ("csv", lambda p, r: write_text(p, r, ",")),
    "tsv": ("tsv", lambda p, r: write_text(p, r, "\t")),
}


def distinct_rows(rng, n, dim, lo=0, hi=100):
    seen, rows = set(), []
    while len(rows) < n:
        r = tuple(rng.randint(lo, hi) for _ in range(dim))
        if r not in seen:
            seen.add(r)
            rows.append(list(r))
    return rows


def l2(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


def exact_knn(base, q, k, dist=l2):
    return sorted(range(len(base)), key=lambda i: (dist(q, base[i]), i))[:k]


# ==== Parsing the outputs ====

def parse_text(out):
    """text output -> [[(label, distance), ...] per query]"""
    res = []
    for line in out.splitlines():
        if line.startswith("query "):
            check(int(line.split()[1]) == len(res), f"query numbering: {line!r}")
            res.append([])
        else:
            f = line.split()
            check(len(f) == 5 and f[1] == "label" and f[3] == "distance", f"text line {line!r}")
            check(int(f[0]) == len(res[-1]) + 1, f"rank in {line!r}")
            res[-1].append((int(f[2]), float(f[4])))
    return res


def parse_jsonl(out):
    res = []
    for line in out.splitlines():
        o = json.loads(line)
        check(o["query"] == len(res), "jsonl query numbering")
        check(len(o["labels"]) == len(o["distances"]), "jsonl lengths")
        res.append(list(zip(o["labels"], o["distances"])))
    return res


def parse_csv(out):
    lines = out.splitlines()
    check(lines[0] == "query,rank,label,distance", f"csv header {lines[0]!r}")
    res = []
    for line in lines[1:]:
        q, rank, label, d = line.split(",")
        q, rank = int(q), int(rank)
        if q == len(res):
            res.append([])
        check(q == len(res) - 1 and rank == len(res[-1]) + 1, f"csv order {line!r}")
        res[-1].append((int(label), float(d)))
    return res


PARSERS = {"text": parse_text, "jsonl": parse_jsonl, "csv": parse_csv}


def query(index, qfile, k=5, oformat="text", extra=()):
    out, _ = run("query", index, qfile, "-k", k, "-O", oformat, *extra)
    return PARSERS[oformat](out)


def info(index):
    out, _ = run("info", index, "-O", "json")
    return json.loads(out)


# ==== The tests ====

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def every_format_build_query_verify_add_delete(tmp):
    rng = random.Random(1)
    dim, n0, n1 = 8, 200, 60
    oformats = ["text", "jsonl", "csv"]
    for i, (name, (ext, writer)) in enumerate(FORMATS.items()):
        rows = distinct_rows(rng, n0 + n1, dim, *((0, 100) if name in UNSIGNED else (-50, 50)))
        base = os.path.join(tmp, f"{name}-base.{ext}")
        more = os.path.join(tmp, f"{name}-more.{ext}")
        qf = os.path.join(tmp, f"{name}-q.{ext}")
        index = os.path.join(tmp, f"{name}.sw")
        writer(base, rows[:n0])
        writer(more, rows[n0:])
        writer(qf, rows[:10])
        try:
            _, err = run("build", base, "-o", index, "-j", 2)
            check("build: 200 done" in err, f"progress/summary lines missing: {err!r}")
            check(info(index)["count"] == n0, "count after build")
            of = oformats[i % 3]
            res = query(index, qf, k=5, oformat=of)
            check(len(res) == 10, "one result row per query")
            for qi, r in enumerate(res):
                check(len(r) == 5, "k results")
                check(r[0] == (qi, 0.0), f"query {qi} of a stored vector: got {r[0]}, want ({qi}, 0)")
                want = exact_knn(rows[:n0], rows[qi], 5)
                check([d for _, d in r] == [float(l2(rows[qi], rows[j])) for j in want],
                      f"distances of query {qi}: {r} vs exact {want}")
            out, _ = run("verify", index)
            check("ok" in out, "verify prints ok")
            # add: labels continue after the largest one
            run("add", index, more, "-q")
            check(info(index)["count"] == n0 + n1, "count after add")
            res = query(index, more, k=1, oformat=of)
            check([r[0] for r in res] == [(n0 + j, 0.0) for j in range(n1)],
                  "added rows found under labels 200..259")
            # delete: a labels file and --label
            lf = os.path.join(tmp, f"{name}-del.txt")
            with open(lf, "w") as f:
                f.write("0\n1\n2\n\n3\n")
            run("delete", index, lf, "--label", "4,250", "-q")
            check(info(index)["count"] == n0 + n1 - 6, "count after delete")
            res = query(index, qf, k=3, oformat=of)
            for qi in range(5):
                check(all(l != qi for l, _ in res[qi]), f"deleted label {qi} still returned")
            check(res[7][0] == (7, 0.0), "a survivor still finds itself")
            run("verify", index)
        except Failure as e:
            raise Failure(f"[{name}] {e}")


@test
def output_formats_agree(tmp):
    rng = random.Random(2)
    rows = distinct_rows(rng, 300, 6)
    base, qf, index = (os.path.join(tmp, x) for x in ("b.fbin", "q.fbin", "i.sw"))
    write_bin(base, rows, "f")
    write_bin(qf, rows[50:70], "f")
    run("build", base, "-o", index, "-q")
    outs = {of: query(index, qf, k=7, oformat=of) for of in PARSERS}
    check(outs["text"] == outs["jsonl"] == outs["csv"], "text, jsonl and csv disagree")
    check(all(r[0] == (50 + i, 0.0) for i, r in enumerate(outs["csv"])), "self first")
    # one vector on the command line, with --exact and with --ef
    v = ",".join(str(x) for x in rows[123])
    for extra in ((), ("--exact",), ("--ef", 200)):
        out, _ = run("query", index, "--vector", v, "-k", 3, "-O", "jsonl", *extra)
        o = json.loads(out)
        check(o["labels"][0] == 123 and o["distances"][0] == 0, f"--vector {extra}: {o}")
    out, _ = run("query", index, "--vector", " ".join(str(x) for x in rows[5]), "-k", 1)
    check(parse_text(out) == [[(5, 0.0)]], "blank-separated --vector")


@test
def labels_file_and_updates(tmp):
    rng = random.Random(3)
    rows = distinct_rows(rng, 50, 4)
    base, lf, index = (os.path.join(tmp, x) for x in ("b.csv", "l.txt", "i.sw"))
    write_text(base, rows, ",")
    labels = [1000 + 7 * i for i in range(50)]
    with open(lf, "w") as f:
        f.write("\n".join(map(str, labels)) + "\n")
    run("build", base, "-o", index, "--labels", lf, "-q")
    res = query(index, base, k=1)
    check([r[0][0] for r in res] == labels, "labels from the file")
    # add with --labels naming an existing label: an update
    upd = os.path.join(tmp, "u.csv")
    write_text(upd, [[100, 100, 100, 100]], ",")
    ul = os.path.join(tmp, "ul.txt")
    with open(ul, "w") as f:
        f.write("1000\n")
    _, err = run("add", index, upd, "--labels", ul)
    check("1 of them updates" in err, f"update reported: {err!r}")
    check(info(index)["count"] == 50, "an update does not add")
    out, _ = run("query", index, "--vector", "100,100,100,100", "-k", 1, "-O", "jsonl")
    check(json.loads(out)["labels"] == [1000], "updated vector found under its label")
    # --start
    run("add", index, upd, "--start", 5, "-q")
    out, _ = run("query", index, "--vector", "100,100,100,100", "-k", 2, "-O", "jsonl")
    check(sorted(json.loads(out)["labels"]) == [5, 1000], "--start labels")
    # tombstones
    run("delete", index, "--label", 5, "--tombstone", "-q")
    i = info(index)
    check(i["count"] == 50 and i["deleted"] == 1, f"tombstone counts {i}")


@test
def gt_matches_brute_force(tmp):
    rng = random.Random(4)
    base_rows = [[rng.randint(0, 20) for _ in range(10)] for _ in range(400)]  # ties happen
    q_rows = [[rng.randint(0, 20) for _ in range(10)] for _ in range(25)]
    base, qf = os.path.join(tmp, "b.ibin"), os.path.join(tmp, "q.ibin")
    write_bin(base, base_rows, "i")
    write_bin(qf, q_rows, "i")

    def dot1(a, b):
        return 1 - sum(x * y for x, y in zip(a, b))

    def l1(a, b):
        return sum(abs(x - y) for x, y in zip(a, b))

    for metric, dist in (("l2", l2), ("l1", l1), ("ip", dot1)):
        gt, gd = os.path.join(tmp, f"gt-{metric}.ibin"), os.path.join(tmp, f"gd-{metric}.fbin")
        run("gt", base, qf, "-k", 10, "-o", gt, "--distances", gd, "--metric", metric,
            "-j", 3, "-q")
        ids, dists = read_ibin(gt), read_fbin(gd)
        check(len(ids) == 25 and all(len(r) == 10 for r in ids), "gt shape")
        for qi, q in enumerate(q_rows):
            want = exact_knn(base_rows, q, 10, dist)
            check(ids[qi] == want, f"{metric} query {qi}: {ids[qi]} vs {want}")
            check(dists[qi] == [float(dist(q, base_rows[j])) for j in want], f"{metric} distances")
    # cosine: floating point, so compare distances with a tolerance
    gt, gd = os.path.join(tmp, "gt-cos.ibin"), os.path.join(tmp, "gd-cos.fbin")
    run("gt", base, qf, "-k", 5, "-o", gt, "--distances", gd, "--metric", "cosine", "-q")

    def cos1(a, b):
        na, nb = sum(x * x for x in a) ** 0.5, sum(x * x for x in b) ** 0.5
        return 1 - sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 1.0

    for qi, q in enumerate(q_rows):
        want = sorted(cos1(q, b) for b in base_rows)[:5]
        got = read_fbin(gd)[qi]
        check(all(abs(a - b) < 1e-5 for a, b in zip(got, want)), f"cosine {got} vs {want}")
        check(all(abs(cos1(q, base_rows[j]) - d) < 1e-5
                  for j, d in zip(read_ibin(gt)[qi], got)), "cosine ids match their distances")
    # the tool's gt against the library's exact search (query --exact)
    index = os.path.join(tmp, "i.sw")
    run("build", base, "-o", index, "-q")
    res = query(index, qf, k=10, oformat="csv", extra=("--exact",))
    lib = [[float(d) for _, d in r] for r in res]
    check(lib == read_fbin(os.path.join(tmp, "gd-l2.fbin")), "gt distances = sw_search_exact's")


def read_ibin(path, code="i"):
    with open(path, "rb") as f:
        n, k = struct.unpack("<ii", f.read(8))
        data = f.read()
    check(len(data) == 4 * n * k, f"{path}: length")
    vals = struct.unpack("<%d%s" % (n * k, code), data)
    return [list(vals[i * k:(i + 1) * k]) for i in range(n)]


def read_fbin(path):
    return read_ibin(path, "f")


@test
def gt_matches_bigann10k(tmp):
    d = os.path.join(SHARED, "data", "bigann10k")
    if not os.path.exists(os.path.join(d, "gt.ibin")):
        return "skipped: no ../shared/data/bigann10k"
    gt, gd = os.path.join(tmp, "gt.ibin"), os.path.join(tmp, "gd.fbin")
    run("gt", os.path.join(d, "base.u8bin"), os.path.join(d, "query.u8bin"), "-k", 100,
        "-o", gt, "--distances", gd, "-q")
    mine, ref = read_ibin(gt), read_ibin(os.path.join(d, "gt.ibin"))
    md, rd = read_fbin(gd), read_fbin(os.path.join(d, "gt_dist.fbin"))
    check(md == rd, "distances equal the published ground truth's")
    for qi in range(len(ref)):
        for j in range(100):
            if mine[qi][j] != ref[qi][j]:  # only a tie may reorder
                check(md[qi].count(md[qi][j]) > 1, f"query {qi} rank {j}: {mine[qi][j]} vs "
                      f"{ref[qi][j]} at distance {md[qi][j]} (no tie)")


@test
def bench_recall(tmp):
    rng = random.Random(5)
    rows = distinct_rows(rng, 1500, 12)
    qrows = [[rng.randint(0, 100) for _ in range(12)] for _ in range(60)]
    base, qf, gt, index = (os.path.join(tmp, x) for x in ("b.u8bin", "q.u8bin", "gt.ibin", "i.sw"))
    write_bin(base, rows, "B")
    write_bin(qf, qrows, "B")
    run("build", base, "-o", index, "-q", "-j", 1)
    run("gt", base, qf, "-k", 10, "-o", gt, "-q")
    out, _ = run("bench", index, qf, "--gt", gt, "-k", 10, "--ef", "10,64,256", "-O", "csv")
    lines = out.splitlines()
    check(lines[0] == "ef,k,recall,qps,p50_ms,p95_ms,p99_ms,dist_evals_per_query,hops_per_query,"
          "ns_per_dist,overhead", lines[0])
    table = [l.split(",") for l in lines[1:]]
    check([int(r[0]) for r in table] == [10, 64, 256], "one row per ef")
    rec = {int(r[0]): float(r[2]) for r in table}
    check(rec[256] >= 0.97, f"recall@10 at ef 256: {rec[256]}")
    check(rec[256] >= rec[10] - 0.02, f"recall grows with ef: {rec}")
    for r in table:
        check(float(r[3]) > 0 and float(r[4]) <= float(r[5]) <= float(r[6]), f"latencies {r}")
        # a walk at ef expands at least ef nodes (fewer only when the index
        # is smaller) and scores more nodes than it expands
        check(float(r[8]) >= min(int(r[0]), 10) and float(r[7]) > float(r[8]), f"work {r}")
        # time per distance is the pass time over the distances counted, and
        # the overhead factor that over the exact scan's time per distance
        nspd = 1e9 / (float(r[3]) * float(r[7]))
        check(abs(float(r[9]) - nspd) <= 0.05 * nspd and float(r[10]) > 0, f"ns/dist {r}")
    dist = {int(r[0]): float(r[7]) for r in table}
    check(dist[10] < dist[64] < dist[256], f"more work at larger ef: {dist}")
    out, _ = run("bench", index, qf, "--gt", gt, "--ef", "256", "-O", "json")
    j = json.loads(out)
    check(j["rows"][0]["ef"] == 256 and abs(j["rows"][0]["recall"] - rec[256]) < 0.05, f"json {j}")
    check(j["rows"][0]["dist_evals_per_query"] > j["rows"][0]["hops_per_query"] > 0,
          f"json work {j}")
    check(j["scan_ns_per_dist"] > 0 and abs(j["rows"][0]["overhead"] * j["scan_ns_per_dist"]
                                            - j["rows"][0]["ns_per_dist"]) < 0.01 * j["rows"][0]["ns_per_dist"] + 0.01,
          f"json overhead {j}")
    out, _ = run("bench", index, qf, "--gt", gt, "--ef", "32")
    check("dist/query" in out and "overhead" in out and "recall" in out and "n/a" not in out,
          "table")
    # a ground truth for other queries gives a low recall: the recall is computed
    wrong = os.path.join(tmp, "wrong.ibin")
    ids = read_ibin(gt)
    write_bin(wrong, ids[1:] + ids[:1], "i")
    out, _ = run("bench", index, qf, "--gt", wrong, "--ef", "256", "-O", "json")
    check(json.loads(out)["rows"][0]["recall"] < 0.3, "recall against the wrong ground truth")


@test
def info_stats_verify(tmp):
    rng = random.Random(6)
    rows = distinct_rows(rng, 500, 8)
    base, index = os.path.join(tmp, "b.fvecs"), os.path.join(tmp, "i.sw")
    write_vecs(base, rows, "f")
    run("build", base, "-o", index, "-q", "--metric", "cosine", "-M", 8,
        "--ef-construction", 50, "--ef-search", 33, "--seed", 9)
    i = info(index)
    check((i["dim"], i["metric"], i["M"], i["M0"], i["ef_construction"], i["ef_search"],
           i["seed"], i["count"]) == (8, "cosine", 8, 16, 50, 33, 9, 500), f"info {i}")
    check(i["format_version"] == 4 and i["file_bytes"] == os.path.getsize(index), f"info {i}")
    check(i["memory_mapped"] == os.path.getsize(index) and i["simd"], f"info {i}")
    out, _ = run("info", index)
    check("format version   4" in out and "cosine" in out, out)
    s = json.loads(run("stats", index, "-O", "json")[0])
    check(s["count"] == 500 and s["layer"][0]["nodes"] == 500, f"stats {s}")
    check(s["layer"][0]["max_degree"] <= 16 and s["unreachable"] == 0, f"stats {s}")
    check(sum(l["nodes"] for l in s["layer"]) >= 500 and len(s["layer"]) == s["layers"], "layers")
    m = s["memory"]
    check(m["vectors"] + m["links0"] + m["upper"] + m["labels"] + m["scratch"] + m["other"]
          == m["total"], f"memory parts {m}")
    out, _ = run("stats", index)
    check("reciprocal" in out and "unreachable nodes 0" in out, out)
    # a damaged record: the mapped open succeeds, verify finds it (exit 1),
    # sw_load refuses the file (exit 4) and add leaves it as it was
    data = bytearray(open(index, "rb").read())
    table_off, nsec = struct.unpack_from("<QI", data, len(data) - 32)
    nodes = None
    for e in range(nsec):
        typ, _, off, length = struct.unpack_from("<IIQQ", data, table_off + 32 * e)
        if typ == 6:
            nodes = off
    check(nodes is not None, "NODES section")
    data[nodes + 1] ^= 0x40
    bad = os.path.join(tmp, "bad.sw")
    open(bad, "wb").write(bytes(data))
    run("verify", bad, expect=EXIT_FAIL)
    h = digest(bad)
    run("add", bad, base, expect=EXIT_INDEX)
    check(digest(bad) == h, "a corrupt index is left as it was")
    # a damaged header: nothing opens it
    data[30] ^= 1
    open(bad, "wb").write(bytes(data))
    for cmd in ("verify", "info", "stats"):
        run(cmd, bad, expect=EXIT_INDEX)
    run("query", bad, "--vector", "1,2,3,4,5,6,7,8", expect=EXIT_INDEX)
    open(bad, "wb").write(b"not an index at all")
    run("verify", bad, expect=EXIT_INDEX)


@test
def old_format_versions(tmp):
    """Files of formats 1-3 cannot be mapped: read commands load them, add converts."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden_v1.swi")
    if not os.path.exists(src):
        return "skipped: no tests/data/golden_v1.swi"
    index = os.path.join(tmp, "v1.swi")
    open(index, "wb").write(open(src, "rb").read())
    i = info(index)
    check(i["format_version"] == 1 and i["opened"] == "loaded", f"info {i}")
    run("verify", index)
    json.loads(run("stats", index, "-O", "json")[0])
    v = os.path.join(tmp, "v.csv")
    write_text(v, [[0.5] * i["dim"]], ",")
    res = query(index, v, k=1)
    check(len(res[0]) == 1, "a query of a version-1 file")
    run("add", index, v, "-q")
    j = info(index)
    check(j["format_version"] == 4 and j["opened"] == "mapped" and j["count"] == i["count"] + 1,
          f"after add: {j}")


@test
def bad_input(tmp):
    rng = random.Random(7)
    rows = distinct_rows(rng, 100, 4)
    base, index = os.path.join(tmp, "b.fbin"), os.path.join(tmp, "i.sw")
    write_bin(base, rows, "f")
    run("build", base, "-o", index, "-q")
    h = digest(index)
    p = lambda name: os.path.join(tmp, name)

    def fails(code, *args, contains=None):
        _, err = run(*args, expect=code)
        if contains:
            check(contains in err, f"{args}: {err!r} lacks {contains!r}")
        return err

    # missing files
    fails(EXIT_DATA, "build", p("missing.fvecs"), "-o", p("x.sw"), contains="missing.fvecs")
    fails(EXIT_INDEX, "query", p("missing.sw"), base, contains="missing.sw")
    fails(EXIT_INDEX, "add", p("missing.sw"), base)
    # truncated files, one of each layout
    full = open(base, "rb").read()
    open(p("t.fbin"), "wb").write(full[:-3])
    fails(EXIT_DATA, "build", p("t.fbin"), "-o", p("x.sw"), contains="truncated")
    open(p("long.fbin"), "wb").write(full + b"\0\0\0\0")
    fails(EXIT_DATA, "build", p("long.fbin"), "-o", p("x.sw"), contains="wrong length")
    write_vecs(p("t.fvecs"), rows, "f")
    open(p("t.fvecs"), "r+b").truncate(os.path.getsize(p("t.fvecs")) - 2)
    fails(EXIT_DATA, "build", p("t.fvecs"), "-o", p("x.sw"), contains="row 99 is cut short")
    open(p("h.fbin"), "wb").write(struct.pack("<ii", 1 << 30, 1 << 14))  # huge header, no data
    fails(EXIT_DATA, "build", p("h.fbin"), "-o", p("x.sw"), contains="truncated")
    open(p("neg.ibin"), "wb").write(struct.pack("<ii", -5, 4))
    fails(EXIT_DATA, "build", p("neg.ibin"), "-o", p("x.sw"), contains="negative")
    open(p("d0.u8bin"), "wb").write(struct.pack("<ii", 1, 0))
    fails(EXIT_DATA, "build", p("d0.u8bin"), "-o", p("x.sw"), contains="dimension 0")
    npy = npy_bytes(rows, "<f4", "f")
    open(p("t.npy"), "wb").write(npy[:-1])
    fails(EXIT_DATA, "build", p("t.npy"), "-o", p("x.sw"), contains="truncated")
    open(p("e.fvecs"), "wb").write(b"")
    fails(EXIT_DATA, "build", p("e.fvecs"), "-o", p("x.sw"), contains="no vectors")
    # rows of another dimension inside one file
    write_vecs(p("mixed.fvecs"), rows[:3] + [[1.0, 2.0, 3.0]] + rows[3:5], "f")
    fails(EXIT_DATA, "build", p("mixed.fvecs"), "-o", p("x.sw"), contains="row 3 has dimension 3")
    # NaN and infinity, naming the row
    bad_rows = [r[:] for r in rows[:10]]
    bad_rows[6][2] = float("nan")
    write_bin(p("nan.fbin"), bad_rows, "f")
    fails(EXIT_DATA, "build", p("nan.fbin"), "-o", p("x.sw"), contains="row 6, element 2 is NaN")
    bad_rows[6][2] = float("inf")
    write_npy(p("inf.npy"), bad_rows, "<f4", "f")
    fails(EXIT_DATA, "build", p("inf.npy"), "-o", p("x.sw"), contains="row 6, element 2 is infinite")
    open(p("inf16.npy"), "wb").write(npy_bytes([[1.0, 2.0]], "<f2", "e")[:-2] + b"\x00\x7c")
    fails(EXIT_DATA, "build", p("inf16.npy"), "-o", p("x.sw"), contains="row 0, element 1 is infinite")
    write_text(p("nan.tsv"), [[1, 2], [3, "nan"]], "\t")
    fails(EXIT_DATA, "build", p("nan.tsv"), "-o", p("x.sw"), contains="line 2, field 2")
    # malformed numbers name line and field
    with open(p("m.csv"), "w") as f:
        f.write("1,2,3,4\n5,6,7,8\n\n9,1.5e,3,4\n")
    fails(EXIT_DATA, "build", p("m.csv"), "-o", p("x.sw"),
          contains="line 4, field 2: malformed number '1.5e'")
    with open(p("f.csv"), "w") as f:
        f.write("1,2,3,4\n5,6,7\n")
    fails(EXIT_DATA, "build", p("f.csv"), "-o", p("x.sw"), contains="line 2 has 3 fields")
    with open(p("e.csv"), "w") as f:
        f.write("1,2,,4\n")
    fails(EXIT_DATA, "build", p("e.csv"), "-o", p("x.sw"), contains="empty field")
    fails(EXIT_DATA, "query", index, "--vector", "1,2,x,4", contains="malformed number 'x'")
    # int32 beyond 2^24 is not silently rounded
    write_bin(p("big.ibin"), [[1, 2, 3, 16777217]], "i")
    fails(EXIT_DATA, "build", p("big.ibin"), "-o", p("x.sw"), contains="2^24")
    # .npy refusals
    write_npy(p("fo.npy"), rows, "<f4", "f", fortran=True)
    fails(EXIT_DATA, "build", p("fo.npy"), "-o", p("x.sw"), contains="Fortran")
    write_npy(p("be.npy"), rows, ">f4", "f")
    fails(EXIT_DATA, "build", p("be.npy"), "-o", p("x.sw"), contains="'>f4'")
    write_npy(p("i8.npy"), rows, "<i8", "q")
    fails(EXIT_DATA, "build", p("i8.npy"), "-o", p("x.sw"), contains="'<i8'")
    write_npy(p("3d.npy"), rows, "<f4", "f", shape=(25, 2, 8))
    fails(EXIT_DATA, "build", p("3d.npy"), "-o", p("x.sw"), contains="3 dimensions")
    open(p("v3.npy"), "wb").write(b"\x93NUMPY\x03\x00" + npy[8:])
    fails(EXIT_DATA, "build", p("v3.npy"), "-o", p("x.sw"), contains="version 3.0")
    open(p("nm.npy"), "wb").write(b"NUMPY" + npy[5:])
    fails(EXIT_DATA, "build", p("nm.npy"), "-o", p("x.sw"), contains="not a .npy")
    open(p("hdr.npy"), "wb").write(npy.replace(b"'shape'", b"'shapf'"))
    fails(EXIT_DATA, "build", p("hdr.npy"), "-o", p("x.sw"), contains="malformed .npy header")
    check(not os.path.exists(p("x.sw")), "no index written by a failed build")
    # unknown format
    open(p("data.xyz"), "wb").write(full)
    fails(EXIT_USAGE, "build", p("data.xyz"), "-o", p("x.sw"), contains="--format")
    run("build", p("data.xyz"), "--format", "fbin", "-o", p("x.sw"), "-q")
    # command-line mistakes
    fails(EXIT_USAGE, "build", base, "-o", p("y.sw"), "--frobnicate", contains="'--frobnicate'")
    fails(EXIT_USAGE, "query", index, base, "-x", contains="'-x'")
    fails(EXIT_USAGE, "frobnicate", contains="unknown command")
    fails(EXIT_USAGE, "build", base, contains="-o FILE is required")
    fails(EXIT_USAGE, "build", "-o", p("y.sw"), contains="missing argument")
    fails(EXIT_USAGE, "build", base, "-o", p("y.sw"), "--metric", "hamming", contains="hamming")
    fails(EXIT_USAGE, "build", base, "-o", p("y.sw"), "-M", 1, contains="out of range")
    fails(EXIT_USAGE, "build", base, "-o", p("y.sw"), "-M", "lots", contains="not a whole number")
    fails(EXIT_USAGE, "build", base, "-o", p("y.sw"), "--type", "q4",
          contains="'q4' is not an element type (f32, f16, int8, binary, pq)")
    fails(EXIT_USAGE, "build", base, "-o", base, contains="data file itself")
    fails(EXIT_USAGE, "query", index, base, "-k", 0)
    fails(EXIT_USAGE, "query", index, base, "-k")
    fails(EXIT_USAGE, "query", index, contains="neither")
    fails(EXIT_USAGE, "query", index, base, "-O", "xml", contains="xml")
    fails(EXIT_USAGE, "bench", index, base, contains="--gt")
    fails(EXIT_USAGE, "bench", index, base, "--gt", base, "--ef", "10,,20")
    fails(EXIT_USAGE, "query", index, base, "extra", contains="unexpected argument")
    fails(EXIT_USAGE, "verify", index, "--quiet=yes", contains="takes no value")
    check(not os.path.exists(p("y.sw")), "no index written")
    fails(EXIT_FAIL, "build", base, "-o", p("nodir/y.sw"), contains="cannot write")
    # dimension mismatches
    write_bin(p("d5.fbin"), [[1.0] * 5] * 3, "f")
    fails(EXIT_DATA, "query", index, p("d5.fbin"), contains="dimension 5, the index 4")
    fails(EXIT_DATA, "add", index, p("d5.fbin"), contains="dimension 5, the index 4")
    fails(EXIT_DATA, "query", index, "--vector", "1,2,3", contains="dimension 3")
    # ground truth that does not fit
    gt = p("gt.ibin")
    run("gt", base, base, "-k", 5, "-o", gt, "-q")
    fails(EXIT_DATA, "bench", index, base, "--gt", gt, "-k", 10, contains="recall@10 needs 10")
    write_bin(p("gt2.ibin"), read_ibin(gt)[:50], "i")
    fails(EXIT_DATA, "bench", index, base, "--gt", p("gt2.ibin"), "-k", 5, contains="50 rows")
    fails(EXIT_USAGE, "gt", base, base, "-k", 101, "-o", p("g.ibin"), contains="only 100 rows")
    fails(EXIT_DATA, "gt", base, p("d5.fbin"), "-o", p("g.ibin"), contains="dimension")
    check(not os.path.exists(p("g.ibin")), "no ground truth written on failure")
    # every failed add or delete leaves the index byte-identical
    check(digest(index) == h, "index changed by a failed query/bench")
    write_bin(p("nan4.fbin"), [[1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 0.0, 0.0]], "f")
    fails(EXIT_DATA, "add", index, p("nan4.fbin"), contains="row 1, element 1 is NaN")
    fails(EXIT_DATA, "add", index, p("t.fbin"), contains="truncated")
    fails(EXIT_DATA, "add", index, p("m.csv"), contains="malformed")
    with open(p("l1.txt"), "w") as f:
        f.write("7\n")
    write_bin(p("two.fbin"), [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], "f")
    fails(EXIT_DATA, "add", index, p("two.fbin"), "--labels", p("l1.txt"), contains="1 labels for 2")
    with open(p("dup.txt"), "w") as f:
        f.write("7\n7\n")
    fails(EXIT_DATA, "add", index, p("two.fbin"), "--labels", p("dup.txt"), contains="more than once")
    with open(p("badl.txt"), "w") as f:
        f.write("7\n-8\n")
    fails(EXIT_DATA, "add", index, p("two.fbin"), "--labels", p("badl.txt"), contains="line 2")
    fails(EXIT_DATA, "delete", index, "--label", "3,1000", contains="label 1000 is not in")
    fails(EXIT_DATA, "delete", index, p("badl.txt"), contains="'-8'")
    fails(EXIT_DATA, "delete", index, p("missing.txt"), contains="missing.txt")
    fails(EXIT_USAGE, "delete", index, "--label", "3,x")
    fails(EXIT_USAGE, "delete", index, contains="name the labels")
    fails(EXIT_USAGE, "add", index, p("two.fbin"), "--start", "-1")
    fails(EXIT_DATA, "add", index, p("two.fbin"), "--start", str(2**64 - 2), contains="2^64")
    check(digest(index) == h, "index changed by a failed add or delete")
    leftovers = [f for f in os.listdir(tmp) if ".tmp" in f]
    check(not leftovers, f"temporary files left behind: {leftovers}")
    run("delete", index, "--label", "1000", "--ignore-missing", "-q")
    check(digest(index) == h, "deleting nothing rewrote the index")
    # --ignore-missing deletes what is there
    run("delete", index, "--label", "3,1000", "--ignore-missing", "-q")
    check(info(index)["count"] == 99, "--ignore-missing")
    # --quiet says nothing on success
    _, err = run("build", base, "-o", p("q.sw"), "-q")
    check(err == "", f"--quiet printed {err!r}")


def mutate(rng, data):
    """A damaged copy: bytes flipped, cut short, or a header count changed."""
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        del data[rng.randrange(len(data) + 1):]
    elif kind == 2 and len(data) >= 8:
        off = rng.choice((0, 4))
        struct.pack_into("<i", data, off, rng.choice((0, -1, 1, 2**31 - 1, 65537, 3, 1000)))
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
    return bytes(data)


@test
def mutated_files_never_crash(tmp, rounds=int(os.environ.get("SW_CLI_FUZZ_ROUNDS", "12"))):
    rng = random.Random(9)
    rows = distinct_rows(rng, 12, 4, -50, 50)
    index = os.path.join(tmp, "i.sw")
    write_bin(os.path.join(tmp, "seed.fbin"), rows, "f")
    run("build", os.path.join(tmp, "seed.fbin"), "-o", index, "-q")
    h = digest(index)
    for name, (ext, writer) in FORMATS.items():
        path = os.path.join(tmp, f"seed-{name}.{ext}")
        writer(path, [[abs(x) for x in r] for r in rows] if name in UNSIGNED else rows)
        good = open(path, "rb").read()
        for i in range(rounds):
            bad = os.path.join(tmp, f"bad.{ext}")
            open(bad, "wb").write(mutate(rng, good))
            for args in (("build", bad, "-o", os.path.join(tmp, "m.sw"), "-q"),
                         ("add", index, bad, "-q", "--start", 100 + 1000 * i)):
                p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True,
                                   text=True, errors="replace", timeout=120)
                check(p.returncode in (0, EXIT_DATA) and "Sanitizer" not in p.stderr
                      and "runtime error" not in p.stderr,
                      f"[{name} #{i}] {args[0]}: exit {p.returncode}: {p.stderr[-1500:]}")
                if p.returncode:
                    check(p.stderr.count("\n") == 1, f"one line: {p.stderr!r}")
            if digest(index) != h:  # an add that succeeded: start again from the seed
                run("build", os.path.join(tmp, "seed.fbin"), "-o", index, "-q")


@test
def quantized_types(tmp):
    """--type, --keep and --pq-m at build; --rerank at query and bench; info
    and stats report the storage; the command line's refusals name the value."""
    rng = random.Random(12)
    dim = 8
    rows = distinct_rows(rng, 1500, dim)
    p = lambda name: os.path.join(tmp, name)
    base, qf = p("b.fbin"), p("q.fbin")
    write_bin(base, rows, "f")
    write_bin(qf, rows[:10], "f")
    index = p("i8.sw")
    _, err = run("build", base, "-o", index, "--type", "int8", "--keep", "disk", "-j", 2)
    check("trained the int8 quantizer on 1500 rows" in err and "int8" in err.splitlines()[-1],
          f"build summary: {err!r}")
    i = info(index)
    check((i["element_type"], i["keep"], i["trained"], i["count"]) == ("int8", "disk", True, 1500),
          f"info {i}")
    check(i["memory_full"] == 0, f"full vectors of keep disk are served from the file: {i}")
    out, _ = run("info", index)
    check("element type     int8" in out and "kept in the file (disk)" in out, out)
    s = json.loads(run("stats", index, "-O", "json")[0])
    check((s["element_type"], s["keep"], s["count"]) == ("int8", "disk", 1500), f"stats {s}")
    check("storage    int8" in run("stats", index)[0], "stats text names the type")
    run("verify", index)
    # re-ranked with the full vectors: each stored row finds itself at
    # distance 0, and every distance is the exact one
    for extra in ((), ("--rerank", 1), ("--rerank", 8, "--ef", 100)):
        res = query(index, qf, k=5, oformat="jsonl", extra=extra)
        for qi, r in enumerate(res):
            check(r[0] == (qi, 0.0), f"{extra}: query {qi} of a stored vector: {r[0]}")
            check([d for _, d in r] == [float(l2(rows[qi], rows[l])) for l, _ in r],
                  f"{extra}: distances of query {qi}: {r}")
    # add trains nothing more and keeps the type
    write_bin(p("more.fbin"), distinct_rows(random.Random(13), 20, dim, 101, 200), "f")
    run("add", index, p("more.fbin"), "-q")
    check(info(index)["count"] == 1520 and info(index)["element_type"] == "int8", "after add")
    # bench passes --rerank through
    run("gt", base, qf, "-k", 10, "-o", p("g.ibin"), "-q")
    b = json.loads(run("bench", index, qf, "--gt", p("g.ibin"), "--ef", "64", "--rerank", 3,
                       "-O", "json")[0])
    check((b["type"], b["keep"], b["rerank"]) == ("int8", "disk", 3), f"bench {b}")
    check(b["rows"][0]["recall"] >= 0.9, f"bench recall {b['rows'][0]}")
    # the other types build and answer, pq with a --pq-m that divides the dimension
    for typ, extra in (("f16", ()), ("binary", ("--keep", "memory")), ("pq", ("--pq-m", 4)),
                       ("int8", ("--keep", "none"))):
        out_ix = p(f"{typ}.sw")
        run("build", base, "-o", out_ix, "--type", typ, "-q", *extra)
        i = info(out_ix)
        check(i["element_type"] == typ and i["count"] == 1500, f"{typ}: info {i}")
        if typ == "pq":
            check(i["pq_m"] == 4, f"pq_m {i}")
        res = query(out_ix, qf, k=3)
        check(len(res) == 10 and all(len(r) == 3 for r in res), f"{typ}: results")
        if extra != ("--keep", "none"):
            check(sum(r[0][0] == qi for qi, r in enumerate(res)) >= 9, f"{typ}: self found {res}")
    # refusals, each naming what is wrong
    def fails(code, *args, contains):
        _, err = run(*args, expect=code)
        check(contains in err, f"{args}: {err!r} lacks {contains!r}")

    fails(EXIT_USAGE, "build", base, "-o", p("x.sw"), "--type", "int4",
          contains="--type: 'int4' is not an element type (f32, f16, int8, binary, pq)")
    fails(EXIT_USAGE, "build", base, "-o", p("x.sw"), "--type", "int8", "--keep", "tape",
          contains="--keep: 'tape' is not one of memory, disk, none")
    fails(EXIT_USAGE, "build", base, "-o", p("x.sw"), "--keep", "disk",
          contains="--keep disk needs a compressed --type")
    fails(EXIT_USAGE, "build", base, "-o", p("x.sw"), "--pq-m", 4, "--type", "int8",
          contains="--pq-m applies to --type pq only")
    fails(EXIT_USAGE, "build", base, "-o", p("x.sw"), "--type", "pq", "--pq-m", 3,
          contains="--pq-m 3 does not divide the dimension 8")
    fails(EXIT_USAGE, "query", index, qf, "--rerank", 0, contains="out of range")
    fails(EXIT_USAGE, "query", index, qf, "--rerank", 1001, contains="out of range")
    write_bin(p("few.fbin"), rows[:100], "f")
    fails(EXIT_DATA, "build", p("few.fbin"), "-o", p("x.sw"), "--type", "pq", "-q",
          contains="training the pq quantizer")
    check(not os.path.exists(p("x.sw")), "no index written by a refused build")


@test
def help_and_version(tmp):
    out, _ = run("--version")
    check(out.startswith("smallworld 0.") and "kernels" in out, out)
    out, _ = run("--help")
    check("Exit status" in out and "build" in out and "delete" in out, out)
    for cmd in ("build", "query", "bench", "gt", "info", "stats", "verify", "add", "delete"):
        out, _ = run(cmd, "--help")
        check(out.startswith(f"usage: smallworld {cmd}") and "Exit status" in out, out)
        out2, _ = run("help", cmd)
        check(out2 == out, "help CMD = CMD --help")
    p = subprocess.run([BIN], capture_output=True, text=True)
    check(p.returncode == EXIT_USAGE and "usage:" in p.stderr, "no arguments")


@test
def progress_on_a_terminal(tmp):
    try:
        import pty
    except ImportError:
        return "skipped: no pty module"
    rng = random.Random(8)
    rows = distinct_rows(rng, 3000, 4)
    base = os.path.join(tmp, "b.fbin")
    write_bin(base, rows, "f")
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, "build", base, "-o", os.path.join(tmp, "i.sw"), "-j", "1"],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    rc = p.wait()
    os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    check(rc == 0, f"exit {rc}")
    check("\r" in out and "[####" in out and "3,000/3,000" in out, f"bar: {out!r}")
    check("built " in out, "summary after the bar")


@test
def review_fixes(tmp):
    """gt never writes over an input or a non-file; a fifo is refused, not
    waited on; ef below k is shown as searched; a NUL in a labels file."""
    rng = random.Random(11)
    rows = distinct_rows(rng, 60, 4)
    p = lambda name: os.path.join(tmp, name)
    base, index = p("b.fbin"), p("i.sw")
    write_bin(base, rows, "f")
    write_bin(p("q.fbin"), rows[:5], "f")
    run("build", base, "-o", index, "-q")
    before = digest(base)
    run("gt", base, p("q.fbin"), "-k", 3, "-o", base, "-q", expect=EXIT_USAGE)
    check(digest(base) == before, "gt -o BASE left the base file as it was")
    run("gt", base, p("q.fbin"), "-k", 3, "-o", p("g.ibin"), "--distances", p("q.fbin"), "-q",
        expect=EXIT_USAGE)
    if os.path.exists("/dev/null"):
        run("gt", base, p("q.fbin"), "-k", 3, "-o", "/dev/null", "-q", expect=EXIT_USAGE)
        check(not os.path.isfile("/dev/null"), "/dev/null is still a device")
    os.mkfifo(p("ff.fbin"))
    run("build", p("ff.fbin"), "-o", p("x.sw"), "-q", expect=EXIT_DATA)  # returns: no open() wait
    run("gt", base, p("q.fbin"), "-k", 10, "-o", p("g.ibin"), "-q")
    out, _ = run("bench", index, p("q.fbin"), "--gt", p("g.ibin"), "-k", 10, "--ef", "1,2,20",
                 "-O", "csv")
    check([int(l.split(",")[0]) for l in out.splitlines()[1:]] == [10, 10, 20],
          f"ef below k shown as k: {out}")
    open(p("labels.txt"), "wb").write(b"5\n49\0junk\n")
    h = digest(index)
    run("delete", index, p("labels.txt"), expect=EXIT_DATA)
    check(digest(index) == h, "a refused delete leaves the index as it was")
    # saving keeps the index's mode
    os.chmod(index, 0o640)
    write_bin(p("more.fbin"), distinct_rows(rng, 3, 4), "f")
    run("add", index, p("more.fbin"), "-q")
    check(os.stat(index).st_mode & 0o777 == 0o640, oct(os.stat(index).st_mode))


def main():
    if not os.access(BIN, os.X_OK):
        print(f"no executable at {BIN}", file=sys.stderr)
        return 1
    failed = 0
    for t in TESTS:
        if SELECT and not any(s in t.__name__ for s in SELECT):
            continue
        with tempfile.TemporaryDirectory(prefix="swcli-") as tmp:
            try:
                note = t(tmp)
                print(f"ok    {t.__name__}" + (f" ({note})" if note else ""))
            except Failure as e:
                failed += 1
                print(f"FAIL  {t.__name__}: {e}")
            except Exception:
                failed += 1
                print(f"ERROR {t.__name__}:\n{traceback.format_exc()}")
    print(f"{len(TESTS) - failed if not SELECT else 'selected'} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
