"""Shared helpers of the smallworld Python tests.

The tests run against the built package (``make`` stages it in
build/python; ctest's "python" test puts that on PYTHONPATH, and
python/run_tests.py keeps the source folder python/ off sys.path).  They
need numpy and pytest only: hnswlib itself is never imported, the drop-in's
expected behaviour is written out in the tests.
"""
import numpy as np


def make_vectors(n, dim, seed, kind="clustered"):
    """n x dim float32 test vectors from a fixed seed.

    kind "uniform": uniform in [0, 1); "normal": standard normal;
    "clustered": 20 Gaussian clusters of spread 0.3 around standard normal
    centres (close to what embeddings look like: dense regions, so that
    near neighbours are not all at the same distance).
    """
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, dim), dtype=np.float32)
    if kind == "normal":
        return rng.standard_normal((n, dim)).astype(np.float32)
    if kind == "clustered":
        centres = rng.standard_normal((20, dim))
        which = rng.integers(0, 20, n)
        return (centres[which] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)
    raise ValueError(kind)


def numpy_distances(metric, base, query):
    """Distances from one query to each row of base, in float64, with the
    library's definitions: l2 squared, ip 1 - dot, cosine 1 - cos, l1."""
    b = np.asarray(base, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "l2":
        return ((b - q) ** 2).sum(axis=1)
    if metric == "ip":
        return 1.0 - b @ q
    if metric == "cosine":
        return 1.0 - (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
    if metric == "l1":
        return np.abs(b - q).sum(axis=1)
    raise ValueError(metric)

