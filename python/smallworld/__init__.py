"""smallworld: approximate nearest-neighbour search on HNSW graphs.

The native API is :class:`Index`::

    import numpy as np, smallworld
    index = smallworld.Index(dim=128, metric="l2")
    index.add(vectors)                      # labels default to 0, 1, 2, ...
    labels, distances = index.search(queries, k=10)

Compressed storage: ``Index(dim, dtype="int8")`` (or "float16", "binary",
"pq") walks the graph on compact codes and re-scores the best candidates
with full-precision copies kept in memory, in the index file
(``keep="disk"``) or not at all (``keep="none"``).

For code written against hnswlib, ``import smallworld.hnswlib as hnswlib``
gives the hnswlib 0.8 API on the same engine.

Why the package is split the way it is: the C extension (``_core``) is a
thin, GIL-releasing wrapper over libsmallworld that takes and fills
C-contiguous float32/uint64 buffers.  Everything a Python user can get
wrong (dtypes, shapes, label ranges, default labels) is checked and
converted here, in Python, where the rules are easy to read, before the
extension is called; the library checks again (dimension, NaN, labels
twice in one batch) and its messages come through unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from . import _core
from ._core import CorruptIndexError, NotTrainedError, ReadOnlyIndexError

__all__ = ["Index", "CorruptIndexError", "ReadOnlyIndexError", "NotTrainedError", "NO_LABEL",
           "METRICS", "DTYPES", "KEEPS", "__version__", "simd"]

__version__: str = _core.version
#: The distance kernels in use on this CPU ("avx512", "avx2", "neon", ...).
simd: str = _core.simd
#: The label that pads a result row shorter than k.
NO_LABEL: int = _core.NO_LABEL
#: Metric names and their library codes.
METRICS = {"l2": 0, "ip": 1, "cosine": 2, "l1": 3}
_METRIC_NAMES = {v: k for k, v in METRICS.items()}
#: Stored element types (Index dtype) and their library codes (sw_type).
DTYPES = {"float32": 0, "float16": 1, "int8": 2, "binary": 3, "pq": 4}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
#: Where a compressed index keeps full-precision copies (sw_keep).
KEEPS = {"memory": 0, "disk": 1, "none": 2}
_KEEP_NAMES = {v: k for k, v in KEEPS.items()}
#: Largest re-rank factor of a search.
MAX_RERANK: int = _core.MAX_RERANK
#: Rows of a first add that trains an untrained index by itself (pq:
#: TRAIN_ROWS_PQ); smaller first adds need Index.train first.
TRAIN_ROWS: int = _core.TRAIN_ROWS
TRAIN_ROWS_PQ: int = _core.TRAIN_ROWS_PQ

# Input element types that are converted to float32 on the way in.
_VECTOR_DTYPES = (np.float32, np.float64, np.float16, np.uint8, np.int8)

ArrayLike = Any
Filter = Union[Callable[[int], bool], ArrayLike, None]


def _vectors(x: ArrayLike, dim: int, what: str = "vectors") -> Tuple[np.ndarray, bool]:
    """Return (float32 C-contiguous n x dim array, was_1d)."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be numeric (got dtype {a.dtype})")
    if a.dtype.type not in _VECTOR_DTYPES:
        if a.dtype.kind in "iu" or a.dtype.kind == "b":
            # Python lists of ints arrive as int64: accept exact integer data
            a = a.astype(np.float32)
        else:
            raise TypeError(
                f"{what} must be float32, float64, float16, uint8 or int8 (got {a.dtype})")
    single = a.ndim == 1
    if single:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 1-D vector or a 2-D array (got {a.ndim} dimensions)")
    if a.shape[1] != dim:
        raise ValueError(f"{what} have dimension {a.shape[1]}, the index has {dim}")
    return np.ascontiguousarray(a, dtype=np.float32), single


def _labels(x: ArrayLike, what: str = "labels") -> np.ndarray:
    """Return a 1-D uint64 array of labels, refusing negatives and non-integers."""
    a = np.asarray(x)
    if not isinstance(x, np.ndarray) and a.dtype.kind in "fO" and a.ndim <= 1:
        # a list mixing ints >= 2**63 with smaller ones becomes float64 in
        # numpy, which would lose bits: take such ints one by one instead
        items = list(x) if a.ndim == 1 else [x]
        if items and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                         for v in items):
            a = np.array([int(v) for v in items], dtype=object)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence (got {a.ndim} dimensions)")
    if a.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if a.dtype == object:
        try:
            vals = [int(v) for v in a]
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be integers") from None
        if any(v < 0 or v >= 2**64 for v in vals):
            raise ValueError(f"{what} must be in 0..2**64-1")
        return np.array(vals, dtype=np.uint64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers (got dtype {a.dtype})")
    if a.dtype.kind == "i" and (a < 0).any():
        raise ValueError(f"{what} must not be negative (got {int(a.min())})")
    return np.ascontiguousarray(a, dtype=np.uint64)


# Settings this package keeps in the index file's metadata block: a tag,
# then a JSON object.  JSON, not pickle: loading a file must never run code.
_META_TAG = b"smallworld-py:"


def _read_meta(blob: bytes) -> dict:
    if not blob.startswith(_META_TAG):
        return {}
    try:
        meta = json.loads(blob[len(_META_TAG):].decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}  # advisory: a damaged blob costs only the settings in it
    return meta if isinstance(meta, dict) else {}


def _dtype_name(dtype: Any) -> str:
    """The DTYPES name of a dtype argument: one of its names, or numpy's
    float32, float16 and int8 (as types or dtype objects)."""
    if isinstance(dtype, str):
        name = dtype
    elif dtype is None:
        name = None
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not a stored element type; choose one of "
                         f"{', '.join(DTYPES)} (numpy float32, float16 and int8 also name "
                         f"the first three)")
    return name


def _rerank(rerank: Optional[int]) -> int:
    if rerank is None:
        return 0
    if (not isinstance(rerank, (int, np.integer)) or isinstance(rerank, bool)
            or not 1 <= rerank <= MAX_RERANK):
        raise ValueError(f"rerank must be an int in 1..{MAX_RERANK} or None (got {rerank!r})")
    return int(rerank)


def _threads(threads: Optional[int]) -> int:
    if threads is None:
        return 0
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
        raise TypeError("threads must be an int or None")
    if threads < 0:
        raise ValueError("threads must be >= 0 (0 or None: one per CPU)")
    return int(threads)


class Index:
    """An HNSW index of ``dim``-dimensional vectors under 64-bit labels.

    Parameters
    ----------
    dim : vector dimension (1..65536).
    metric : "l2" (squared Euclidean), "ip" (1 - dot), "cosine" (1 - cosine;
        vectors are normalised on the way in) or "l1".
    M : links per node on the upper layers (layer 0 gets M0, default 2*M).
    ef_construction : candidate list size while inserting.
    dtype : element type stored and walked: "float32" (exact, the default),
        "float16" (2 bytes a dimension), "int8" (1 byte: each dimension's
        range learned from the data), "binary" (1 bit: the sign around each
        dimension's learned centre, compared by Hamming distance) or "pq"
        (product quantization: ``pq_m`` bytes a vector).  numpy's float32,
        float16 and int8 name the first three.  Whatever is stored, input
        of float32, float64, float16, uint8 or int8 is accepted and
        converted to float32 on the way in.  int8, binary and pq must be
        trained before vectors go in: :meth:`train`, or a first ``add`` of
        at least ``TRAIN_ROWS`` rows (``TRAIN_ROWS_PQ`` for pq), which
        trains on them; a smaller first add raises NotTrainedError.
    seed : seed of the level generator (same data, same seed, one thread:
        the same graph).
    ef : default candidate list size of a search.
    M0 : links per node on layer 0 (None: 2*M).
    keep : where a compressed index keeps its full-precision copies, which
        searches use to re-score their best candidates (``rerank``):
        "memory" (the default), "disk" (in the index file: after ``save``
        and ``load`` they are mapped from it and cost page cache, not
        process memory) or "none" (dropped: distances are estimates from
        the codes and ``get`` returns the decoded approximation).  float32
        keeps its vectors in memory and accepts only "memory".
    pq_m : pq only: the number of sub-quantizers (bytes per vector), which
        must divide ``dim``; None picks the largest divisor of dim not
        above dim/8.

    Thread safety: searches, adds and deletes may run from many Python
    threads at once; the GIL is released inside each.  ``close()`` must not
    race with other calls (it refuses while one is running).
    """

    def __init__(self, dim: int, metric: str = "l2", M: int = 16, ef_construction: int = 200,
                 dtype: Any = "float32", seed: int = 100, ef: int = 64,
                 M0: Optional[int] = None, keep: str = "memory",
                 pq_m: Optional[int] = None) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)}")
        dname = _dtype_name(dtype)
        if not isinstance(keep, str) or keep not in KEEPS:
            raise ValueError(f"keep {keep!r} is not one of {', '.join(KEEPS)}")
        if dname == "float32" and keep != "memory":
            raise ValueError(f"keep={keep!r} needs a compressed dtype: a float32 index's "
                             f"vectors are its full-precision copies (keep='memory')")
        if pq_m is not None:
            if dname != "pq":
                raise ValueError(f"pq_m applies to dtype 'pq' only (dtype is {dname!r})")
            if not isinstance(pq_m, (int, np.integer)) or isinstance(pq_m, bool) or pq_m < 1:
                raise ValueError(f"pq_m must be a positive int or None (got {pq_m!r})")
            if isinstance(dim, (int, np.integer)) and dim > 0 and dim % pq_m:
                raise ValueError(f"pq_m {pq_m} does not divide dim {dim}")
        for name, v in (("dim", dim), ("M", M), ("ef_construction", ef_construction),
                        ("seed", seed), ("ef", ef)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int (got {type(v).__name__})")
            if v < 0:
                raise ValueError(f"{name} must not be negative (got {v})")
        if M0 is not None and (not isinstance(M0, (int, np.integer)) or M0 < 0):
            raise ValueError("M0 must be a non-negative int or None")
        self._ix = _core.Index(int(dim), METRICS[metric], int(M), int(M0 or 0),
                               int(ef_construction), int(ef), int(seed), DTYPES[dname],
                               KEEPS[keep], int(pq_m or 0))
        self._next_label = 0
        self._meta: dict = {}  # saved with the index, as JSON (see save)
        # hands out default labels, and keeps delete's mark-then-compact
        # from taking other calls' tombstones along
        self._lock = threading.Lock()

    # ---- construction from a file ----

    @classmethod
    def load(cls, path: Union[str, os.PathLike], mmap: bool = False) -> "Index":
        """Load an index written by :meth:`save`.

        Raises OSError when the file cannot be read and CorruptIndexError
        when it is not a valid index.

        ``mmap=True`` serves the file read-only without copying it: the
        vectors and layer-0 links stay in a memory mapping and are paged in
        as searches touch them, so a large index opens in milliseconds and
        several processes share one copy in the page cache.  Searches,
        ``get``, ``labels``, ``stats``, ``verify`` and ``save`` work; any
        change raises ReadOnlyIndexError.  The records' contents are
        checked by ``verify()`` rather than at open.  Files saved before
        smallworld 0.3 cannot be mapped: load and save them once.
        """
        self = cls.__new__(cls)
        self._ix = _core.load(os.fspath(path), bool(mmap))
        self._lock = threading.Lock()
        self._meta = _read_meta(self._ix.get_metadata())
        self._next_label = self._meta.get("next_label", 0)
        if (not isinstance(self._next_label, int) or isinstance(self._next_label, bool)
                or not 0 < self._next_label < NO_LABEL):
            labels = self._all_labels()
            self._next_label = int(labels.max()) + 1 if labels.size else 0
        return self

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the index to ``path`` atomically (a temporary file beside it,
        flushed, then renamed over it)."""
        if not self._ix.readonly:  # a mapped index keeps the metadata it has
            self._meta["next_label"] = self._next_label
            self._ix.set_metadata(_META_TAG + json.dumps(self._meta).encode())
        self._ix.save(os.fspath(path))

    @property
    def readonly(self) -> bool:
        """True for an index served from a file (``load(path, mmap=True)``)."""
        return self._ix.readonly

    # ---- adding ----

    def add(self, vectors: ArrayLike, labels: Optional[ArrayLike] = None,
            threads: Optional[int] = None) -> np.ndarray:
        """Add vectors (n x dim, or one vector of dim) under ``labels``.

        Labels default to consecutive integers after the largest label added
        so far.  A label already present is updated (its vector replaced and
        re-linked).  Returns the labels used, as uint64.  Raises ValueError
        for a wrong shape, NaN or infinity (naming the row), negative labels
        or a label given twice; TypeError for a non-numeric array.
        """
        x, _ = _vectors(vectors, self.dim)
        n = x.shape[0]
        if labels is None:
            with self._lock:  # concurrent adds get disjoint ranges
                if self._next_label + n > NO_LABEL:
                    raise ValueError("default labels would pass 2**64-2; give labels explicitly")
                lab = np.arange(self._next_label, self._next_label + n, dtype=np.uint64)
                self._next_label += n
        else:
            lab = _labels(labels)
            if lab.shape[0] != n:
                raise ValueError(f"{lab.shape[0]} labels for {n} vectors")
            if n and (lab == np.uint64(NO_LABEL)).any():
                raise ValueError("label 2**64-1 is reserved: it pads short result rows (NO_LABEL)")
        if n == 0:
            return lab
        try:
            self._ix.add(x, lab, _threads(threads))
        except BaseException:
            if labels is None:
                with self._lock:  # give the default labels back if no add took more since
                    if self._next_label == int(lab[-1]) + 1:
                        self._next_label = int(lab[0])
            raise
        top = int(lab.max()) + 1
        with self._lock:
            if top > self._next_label:
                self._next_label = top
        return lab

    def train(self, vectors: ArrayLike) -> None:
        """Train the quantizer of an int8, binary or pq index on ``vectors``
        (n x dim; none of them is added).  int8 learns each dimension's
        range, binary each dimension's centre, pq its codebooks (k-means
        on at most 65,536 of the rows).  Needs 1 row (pq: 256); a sample
        like the data to come trains best.  A float32 or float16 index
        needs no training: nothing is done.  ValueError when already
        trained or given too few rows.  The GIL is released meanwhile.
        """
        x, _ = _vectors(vectors, self.dim)
        self._ix.train(x)

    @property
    def is_trained(self) -> bool:
        """True when the index can take vectors: float32, float16, or a
        trained quantizer."""
        return self._ix.trained

    # ---- searching ----

    def search(self, queries: ArrayLike, k: int = 10, ef: Optional[int] = None,
               filter: Filter = None, threads: Optional[int] = None,
               exact: bool = False, ef_upper: Optional[int] = None,
               rerank: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The k nearest neighbours of each query.

        ``queries`` is nq x dim (or one vector).  ``filter`` restricts the
        results: an array of allowed labels (checked inside the library, no
        Python per candidate) or a callable ``f(label) -> bool`` (called
        from the search, with the GIL, for some labels only; it must not
        call methods of this index, which raise RuntimeError if it does).
        ``exact`` scores every vector instead of walking the graph (one
        query after the other, on the calling thread).  ``ef_upper`` is the
        width of the descent through the upper layers (1: the paper's greedy
        descent; None: chosen by index size, see sw_search_params.ef_upper).
        ``rerank`` (compressed dtypes): the best ``rerank * k`` candidates
        of the walk (at most ef) are scored again with the full-precision
        vectors and the k nearest by that returned, with exact distances
        (None: the library's default, 4; 1..MAX_RERANK).  Ignored by
        float32 and by ``keep="none"``.

        Returns (labels uint64, distances float32), each nq x k (k for a 1-D
        query), nearest first.  A row with fewer than k results (a small
        index, a strict filter) is padded with NO_LABEL and +inf.
        """
        q, single = _vectors(queries, self.dim, "queries")
        bad = ~np.isfinite(q).all(axis=1)
        if bad.any():
            raise ValueError(f"query {int(np.argmax(bad))} contains NaN or infinity")
        labels, dists, _ = self._search(q, k, ef, filter, threads, exact, ef_upper, rerank)
        if single:
            return labels[0], dists[0]
        return labels, dists

    def _search(self, q: np.ndarray, k: int, ef: Optional[int], filter: Filter,
                threads: Optional[int], exact: bool, ef_upper: Optional[int] = None,
                rerank: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """search on a checked float32 nq x dim array; also returns the
        number of results in each row."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise TypeError("k must be an int")
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        if ef is None:
            ef = 0
        elif not isinstance(ef, (int, np.integer)) or isinstance(ef, bool) or ef < 1:
            raise ValueError(f"ef must be a positive int or None (got {ef!r})")
        if ef_upper is None:
            ef_upper = 0
        elif (not isinstance(ef_upper, (int, np.integer)) or isinstance(ef_upper, bool)
              or ef_upper < 1):
            raise ValueError(f"ef_upper must be a positive int or None (got {ef_upper!r})")
        rr = _rerank(rerank)
        allow, fn = None, None
        if filter is not None:
            if callable(filter):
                fn = filter
            else:
                allow = _labels(filter, "filter")
        nq = q.shape[0]
        labels = np.empty((nq, k), dtype=np.uint64)
        dists = np.empty((nq, k), dtype=np.float32)
        found = np.empty(nq, dtype=np.uint64)
        self._ix.search(q, int(k), int(ef), _threads(threads), allow, fn, labels, dists, found,
                        bool(exact), int(ef_upper), rr)
        return labels, dists, found

    # ---- deleting ----

    def delete(self, labels: ArrayLike, threads: Optional[int] = None) -> None:
        """Delete labels for real: out of the graph, which is repaired, and
        their memory reused by later adds.  Raises KeyError (deleting none)
        when a label is not in the index."""
        with self._lock:
            lab = self._present(labels, allow_tombstoned=True)
            if lab.size == 0:
                return
            if lab.size > 32 and self._ix.deleted_count() == 0:
                # many at once: tombstone them all and repair each list once
                # (the lock keeps other calls' tombstones out of the pass)
                self._ix.mark_deleted(lab)
                try:
                    self._ix.compact(_threads(threads))
                except BaseException:
                    self._ix.unmark_deleted(lab)  # as it was: deleting none
                    raise
            else:
                self._ix.delete(lab)

    def mark_deleted(self, labels: ArrayLike) -> None:
        """Tombstone labels: hidden from every search at once, still in the
        graph; reversible with :meth:`unmark_deleted`.  KeyError (marking
        none) for a label not in the index."""
        with self._lock:
            lab = self._present(labels, allow_tombstoned=True)
            self._ix.mark_deleted(lab)

    def unmark_deleted(self, labels: ArrayLike) -> None:
        """Lift tombstones.  KeyError (lifting none) for a label not in the
        index at all."""
        with self._lock:
            lab = self._present(labels, allow_tombstoned=True)
            self._ix.unmark_deleted(lab)

    def is_deleted(self, label: int) -> bool:
        """True when ``label`` is tombstoned."""
        return self._ix.is_deleted(_labels(label)[0].item())

    def compact(self, threads: Optional[int] = None) -> None:
        """Turn every tombstone into a true deletion, in one parallel pass."""
        with self._lock:
            self._ix.compact(_threads(threads))

    def _present(self, labels: ArrayLike, allow_tombstoned: bool) -> np.ndarray:
        """The distinct labels, each checked to be in the index (KeyError
        otherwise, before anything changes)."""
        self._ix.count()  # ValueError when closed, even for no labels
        lab = np.unique(_labels(labels))
        for v in lab.tolist():
            if not (self._ix.contains(v) or (allow_tombstoned and self._ix.is_deleted(v))):
                raise KeyError(f"label {v} is not in the index")
        return lab

    # ---- looking up ----

    def get(self, labels: ArrayLike) -> np.ndarray:
        """The stored vectors of ``labels`` (n x dim float32; dim for one
        label).  Cosine indexes store, and return, normalised vectors.
        KeyError for a label that is absent or tombstoned."""
        single = np.ndim(labels) == 0
        lab = _labels(labels)
        out = np.empty((lab.shape[0], self.dim), dtype=np.float32)
        self._ix.get(lab, out)
        return out[0] if single else out

    def labels(self, deleted: bool = False) -> np.ndarray:
        """The live labels (or, with deleted=True, the tombstoned ones), as
        uint64, in storage order."""
        return np.frombuffer(self._ix.list_labels(bool(deleted)), dtype=np.uint64).copy()

    def _all_labels(self) -> np.ndarray:
        return np.concatenate([self.labels(False), self.labels(True)])

    def __len__(self) -> int:
        return self._ix.count()

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, (int, np.integer)) or isinstance(label, bool):
            return False
        if label < 0 or label >= 2**64:
            return False
        return self._ix.contains(int(label))

    # ---- parameters ----

    @property
    def dim(self) -> int:
        return self._ix.info()["dim"]

    @property
    def metric(self) -> str:
        return _METRIC_NAMES[self._ix.info()["metric"]]

    @property
    def M(self) -> int:
        return self._ix.info()["M"]

    @property
    def M0(self) -> int:
        return self._ix.info()["M0"]

    @property
    def ef_construction(self) -> int:
        return self._ix.info()["ef_construction"]

    @property
    def seed(self) -> int:
        return self._ix.info()["seed"]

    @property
    def dtype(self) -> str:
        """The stored element type: "float32", "float16", "int8", "binary"
        or "pq" (as saved with the index)."""
        return _DTYPE_NAMES[self._ix.info()["type"]]

    @property
    def keep(self) -> str:
        """Where full-precision copies live: "memory", "disk" or "none"."""
        return _KEEP_NAMES[self._ix.info()["keep"]]

    @property
    def pq_m(self) -> Optional[int]:
        """pq: the number of sub-quantizers; None for the other dtypes."""
        i = self._ix.info()
        return i["pq_m"] if i["type"] == DTYPES["pq"] else None

    @property
    def ef(self) -> int:
        """Default search ef (used when ``search`` gets ef=None)."""
        return self._ix.info()["ef_search"]

    @ef.setter
    def ef(self, value: int) -> None:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"ef must be a positive int (got {value!r})")
        self._ix.set_ef(int(value))

    @property
    def deleted_count(self) -> int:
        """Number of tombstoned labels."""
        return self._ix.deleted_count()

    @property
    def memory_usage(self) -> int:
        """Bytes the index holds (vectors, graph, labels, scratch)."""
        return self._ix.info()["memory_bytes"]

    # ---- inspecting ----

    def stats(self) -> dict:
        """The graph's integrity report, memory by component, the SIMD level.

        Keys: ``count``, ``deleted``, ``free_slots``, ``entry_label`` (None
        when empty), ``unreachable`` (nodes no search reaches from the
        entry point), ``self_links``, ``duplicate_links``,
        ``dangling_links`` and ``overfull_lists`` (totals over the layers;
        all 0 on a sound index), ``memory_bytes`` (as ``memory_usage``),
        ``memory`` (bytes by component: ``total`` = ``memory_bytes`` =
        ``vectors`` + ``links0`` + ``upper`` + ``labels`` + ``scratch`` +
        ``other``; ``mapped``, bytes of a memory-mapped file, is apart from
        the total), ``simd``, and ``layers``: one dict per layer, layer 0
        first, with ``nodes``, ``edges``, ``min_degree``, ``mean_degree``,
        ``max_degree``, the four problem counts of that layer, and
        ``reciprocal_edges`` / ``reciprocal_share`` (sound links a->b
        where b also links to a, and their share of ``edges``).  Unlike
        ``verify`` it counts problems rather than stopping at the first.
        Storage: ``type`` (the dtype's name), ``keep``, ``pq_m`` (0 but
        for pq), ``memory_full`` (bytes of full-precision copies held in
        memory, part of ``memory["vectors"]``; 0 for float32, keep "none"
        and copies served from the file) and ``saturated`` (int8: vector
        components clamped into the learned ranges since the index was
        created or loaded).
        """
        s = self._ix.stats()
        s["type"] = _DTYPE_NAMES[s["type"]]
        s["keep"] = _KEEP_NAMES[s["keep"]]
        return s

    def info(self) -> dict:
        """The parameters and counts in one dict, cheaply (no graph pass):
        ``dim``, ``metric``, ``M``, ``M0``, ``ef_construction``,
        ``ef_search``, ``seed``, ``dtype``, ``keep``, ``pq_m``,
        ``trained``, ``count``, ``deleted``, ``memory_bytes``."""
        i = self._ix.info()
        i["metric"] = _METRIC_NAMES[i["metric"]]
        i["dtype"] = _DTYPE_NAMES[i.pop("type")]
        i["keep"] = _KEEP_NAMES[i["keep"]]
        return i

    def verify(self) -> bool:
        """Check the graph's invariants; True, or CorruptIndexError naming
        the first problem."""
        return self._ix.verify()

    # ---- lifetime ----

    def close(self) -> None:
        """Free the index now.  Later calls raise ValueError."""
        self._ix.close()

    @property
    def closed(self) -> bool:
        return self._ix.closed

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ix.closed:
            return "<smallworld.Index (closed)>"
        i = self._ix.info()
        store = "" if i["type"] == 0 else f" dtype={_DTYPE_NAMES[i['type']]!r}"
        return (f"<smallworld.Index dim={i['dim']} metric={_METRIC_NAMES[i['metric']]!r} "
                f"M={i['M']}{store} count={i['count']}>")

    # ---- pickling: the saved file's bytes ----

    def __getstate__(self) -> dict:
        with tempfile.TemporaryDirectory(prefix="smallworld-") as d:
            path = os.path.join(d, "index.sw")
            self.save(path)
            with open(path, "rb") as f:
                return {"file": f.read(), "next_label": self._next_label, "meta": self._meta}

    def __setstate__(self, state: dict) -> None:
        with tempfile.TemporaryDirectory(prefix="smallworld-") as d:
            path = os.path.join(d, "index.sw")
            with open(path, "wb") as f:
                f.write(state["file"])
            self._ix = _core.load(path)
        self._next_label = int(state.get("next_label", 0))
        self._meta = dict(state.get("meta", {}))
        self._lock = threading.Lock()

