"""The hnswlib 0.8 Python API on the smallworld engine.

Switch by changing one line::

    import smallworld.hnswlib as hnswlib      # was: import hnswlib

``Index`` and ``BFIndex`` take the same arguments, with the same names and
defaults, return the same types and raise the same exceptions (mostly
RuntimeError with hnswlib's messages) as hnswlib's, so existing code runs
unchanged.  What differs, on purpose:

- Vectors with NaN or infinity are refused (ValueError naming the row);
  hnswlib stores them and its searches then return nonsense.
- ``max_elements`` is enforced as hnswlib does, but the engine itself has no
  capacity; ``resize_index`` only moves the limit and never copies.
- A batch of ``add_items`` is checked whole before anything is added: when
  it would pass ``max_elements`` nothing is added (hnswlib adds rows until
  the limit and then raises).
- A label given twice in one ``add_items`` batch: the last row wins (in
  hnswlib the threads race).
- ``load_index`` must be called on an Index declared with the space and
  dimension the file was built with (hnswlib files do not record the space,
  smallworld files do); it raises RuntimeError otherwise.
- The files are smallworld's (checked and atomically written); hnswlib's
  own files are not read.
- A ``filter`` callable is called for some labels only, and from the
  searching threads with the GIL held; BFIndex calls it once per stored
  label per ``knn_query``.
- ``knn_query`` checks the queries' dimension (RuntimeError "Wrong
  dimensionality of the vectors"); hnswlib reads past short rows.
- With ``replace_deleted=True`` a label already present is updated in
  place and does not use up a tombstone (in hnswlib it takes a deleted
  element's slot and the label is then in the index twice); a tombstoned
  label in the batch is brought back with its new vector.
- ``BFIndex`` under cosine normalises queries as well as stored vectors,
  so its distances are 1 - cos (hnswlib's BFIndex leaves queries as they
  are); with fewer than k vectors passing the filter it raises the
  RuntimeError ``Index.knn_query`` raises, where hnswlib returns junk.

How it maps: hnswlib's tombstones are smallworld's (``mark_deleted``);
``replace_deleted=True`` makes tombstoned elements truly deleted
(``sw_compact`` when all go, ``sw_delete`` one by one otherwise) and adds the
new ones in the freed space; ``element_count`` counts tombstoned elements,
as hnswlib's ``cur_element_count`` does.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np

from . import Index as _NativeIndex
from . import _labels

__all__ = ["Index", "BFIndex"]

_SPACES = ("l2", "ip", "cosine")


def _check_space(space: str) -> None:
    if space not in _SPACES:
        raise RuntimeError("Space name must be one of l2, ip, or cosine.")


def _input_2d(data: Any) -> np.ndarray:
    """hnswlib's forcecast to float32 and its shape rules."""
    a = np.asarray(data)
    if a.ndim != 1 and a.ndim != 2:
        raise RuntimeError(
            f"Input vector data wrong shape. Number of dimensions {a.ndim}. "
            "Data must be a 1D or 2D array.")
    if a.ndim == 1:
        a = a.reshape(1, -1)
    return np.ascontiguousarray(a, dtype=np.float32)


def _input_ids(ids: Any, rows: int, cur_l: int) -> np.ndarray:
    if ids is None:
        return np.arange(cur_l, cur_l + rows, dtype=np.uint64)
    a = np.asarray(ids)
    if not ((a.ndim == 1 and a.shape[0] == rows) or (a.ndim == 0 and rows == 1)):
        raise RuntimeError(
            f"The input label shape {a.ndim} does not match the input data vector shape {rows}")
    return _labels(a.reshape(-1), "ids")


def _num_threads(n: int, default: int) -> int:
    n = int(n)
    if n <= 0:
        n = default
    return max(1, min(n, 1024))


class Index:
    """hnswlib.Index: an HNSW index (see the module docstring)."""

    def __init__(self, space: Any = None, dim: Optional[int] = None, *,
                 index: Optional["Index"] = None) -> None:
        if isinstance(space, Index) and index is None and dim is None:
            index, space = space, None  # Index(other), positionally
        if index is not None:  # hnswlib's Index(index=...) copy constructor
            import pickle
            self.__dict__.update(pickle.loads(pickle.dumps(index)).__dict__)
            return
        if space is None or dim is None:
            raise TypeError("Index(space, dim) needs both arguments")
        _check_space(space)
        self.space: str = space
        self.dim: int = int(dim)
        self.num_threads: int = os.cpu_count() or 1
        self._default_ef = 10
        self._index: Optional[_NativeIndex] = None
        self._max_elements = 0
        self._allow_replace = False
        self._cur_l = 0

    # ---- setup ----

    def init_index(self, max_elements: int, M: int = 16, ef_construction: int = 200,
                   random_seed: int = 100, allow_replace_deleted: bool = False) -> None:
        if self._index is not None:
            raise RuntimeError("The index is already initiated.")
        self._index = _NativeIndex(self.dim, metric=self.space, M=int(M),
                                   ef_construction=int(ef_construction), seed=int(random_seed),
                                   ef=self._default_ef)
        self._max_elements = int(max_elements)
        self._allow_replace = bool(allow_replace_deleted)
        self._cur_l = 0

    def _ix(self) -> _NativeIndex:
        if self._index is None:
            raise RuntimeError("The index is not initiated; call init_index or load_index first.")
        return self._index

    # ---- adding ----

    def add_items(self, data: Any, ids: Any = None, num_threads: int = -1,
                  replace_deleted: bool = False) -> None:
        ix = self._ix()
        x = _input_2d(data)
        rows = x.shape[0]
        if x.shape[1] != self.dim:
            raise RuntimeError("Wrong dimensionality of the vectors")
        labels = _input_ids(ids, rows, self._cur_l)
        if rows == 0:
            return
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():  # checked here too, before any tombstone is given up below
            raise ValueError(f"vector contains NaN or infinity (row {int(np.argmax(bad))})")
        # a label twice in one batch: the last row wins
        uniq, first_rev = np.unique(labels[::-1], return_index=True)
        if uniq.shape[0] != rows:
            keep = np.sort(rows - 1 - first_rev)
            labels, x = labels[keep], x[keep]
        if replace_deleted and not self._allow_replace:
            raise RuntimeError("Replacement of deleted elements is disabled in constructor")
        new: List[int] = []
        revived = set()  # tombstoned labels of this batch: updated and brought back
        for label in labels.tolist():
            if label in ix:
                continue
            if ix.is_deleted(label):
                if self._allow_replace and not replace_deleted:
                    raise RuntimeError(
                        "Can't use addPoint to update deleted elements if replacement of "
                        "deleted elements is enabled.")
                revived.add(label)
                continue
            new.append(label)
        # New labels take the place of tombstoned elements (other than the
        # batch's own): those are deleted for real first.
        replace = 0
        others = ix.deleted_count - len(revived)
        if replace_deleted and new and others:
            replace = min(len(new), others)
        if self.element_count - replace + len(new) > self._max_elements:
            raise RuntimeError("The number of elements exceeds the specified limit")
        if replace:
            threads = _num_threads(num_threads, self.num_threads)
            if replace == others:
                # all of them: one compaction pass (the batch's own
                # tombstoned labels go too, and are added back just below)
                ix.compact(threads)
            else:
                gone = [v for v in ix.labels(deleted=True).tolist() if v not in revived]
                ix.delete(gone[:replace])
        threads = _num_threads(num_threads, self.num_threads)
        if rows <= threads * 4:
            threads = 1  # as hnswlib: small batches on one thread
        ix.add(x, labels, threads=threads)
        self._cur_l += rows

    # ---- searching ----

    def knn_query(self, data: Any, k: int = 1, num_threads: int = -1,
                  filter: Optional[Callable[[int], bool]] = None) -> Tuple[np.ndarray, np.ndarray]:
        ix = self._ix()
        x = _input_2d(data)
        if x.shape[1] != self.dim:
            raise RuntimeError("Wrong dimensionality of the vectors")
        threads = _num_threads(num_threads, self.num_threads)
        if x.shape[0] <= threads * 4:
            threads = 1
        labels, dists, found = ix._search(x, int(k), None, filter, threads, False)
        if (found < int(k)).any():
            raise RuntimeError(
                "Cannot return the results in a contiguous 2D array. Probably ef or M is too small")
        return labels, dists

    # ---- deleting ----

    def mark_deleted(self, label: int) -> None:
        ix = self._ix()
        label = int(label)
        if ix.is_deleted(label):
            raise RuntimeError("The requested to delete element is already deleted")
        if label not in ix:
            raise RuntimeError("Label not found")
        ix.mark_deleted(label)

    def unmark_deleted(self, label: int) -> None:
        ix = self._ix()
        label = int(label)
        if label in ix:
            raise RuntimeError("The requested to undelete element is not deleted")
        if not ix.is_deleted(label):
            raise RuntimeError("Label not found")
        ix.unmark_deleted(label)

    # ---- looking up ----

    def get_items(self, ids: Any = None, return_type: str = "numpy") -> Union[np.ndarray, list]:
        if return_type not in ("numpy", "list"):
            raise ValueError('return_type should be "numpy" or "list"')
        ix = self._ix()
        if ids is None:
            labels = np.zeros(0, dtype=np.uint64)
        else:
            a = np.asarray(ids)
            if a.ndim == 0:
                raise ValueError("get_items accepts a list of indices and returns a list of vectors")
            labels = _labels(a.reshape(-1)[: a.shape[0]], "ids")
        try:
            out = ix.get(labels)
        except KeyError:
            raise RuntimeError("Label not found") from None
        if return_type == "list":
            return out.tolist()
        return out if labels.size else np.zeros(0, dtype=np.float32)

    def get_ids_list(self) -> List[int]:
        ix = self._ix()
        return ix.labels().tolist() + ix.labels(deleted=True).tolist()

    # ---- parameters ----

    def set_ef(self, ef: int) -> None:
        self._default_ef = int(ef)
        if self._index is not None:
            self._index.ef = max(1, int(ef))

    def set_num_threads(self, num_threads: int) -> None:
        self.num_threads = int(num_threads)

    @property
    def ef(self) -> int:
        return self._index.ef if self._index is not None else self._default_ef

    @ef.setter
    def ef(self, value: int) -> None:
        self.set_ef(value)

    @property
    def max_elements(self) -> int:
        return self._max_elements if self._index is not None else 0

    @property
    def element_count(self) -> int:
        if self._index is None:
            return 0
        return len(self._index) + self._index.deleted_count

    @property
    def ef_construction(self) -> int:
        return self._index.ef_construction if self._index is not None else 0

    @property
    def M(self) -> int:
        return self._index.M if self._index is not None else 0

    def get_max_elements(self) -> int:
        self._ix()
        return self._max_elements

    def get_current_count(self) -> int:
        self._ix()
        return self.element_count

    def resize_index(self, new_size: int) -> None:
        self._ix()
        if int(new_size) < self.element_count:
            raise RuntimeError("Cannot resize, max element is less than the current number of elements")
        self._max_elements = int(new_size)

    # ---- files ----

    def save_index(self, path_to_index: str) -> None:
        ix = self._ix()
        ix._meta["hnswlib"] = {"max_elements": self._max_elements}
        ix.save(path_to_index)

    def load_index(self, path_to_index: str, max_elements: int = 0,
                   allow_replace_deleted: bool = False) -> None:
        if self._index is not None:
            print("Warning: Calling load_index for an already inited index. Old index is being "
                  "deallocated.", file=sys.stderr)
        try:
            ix = _NativeIndex.load(path_to_index)
        except OSError:
            raise RuntimeError("Cannot open file") from None
        except ValueError as e:  # CorruptIndexError
            raise RuntimeError(f"Index seems to be corrupted or unsupported ({e})") from None
        if ix.dim != self.dim or ix.metric != self.space:
            metric, dim = ix.metric, ix.dim
            ix.close()
            raise RuntimeError(
                f"The file holds a '{metric}' index of dimension {dim}, not "
                f"'{self.space}' of dimension {self.dim}")
        mine = ix._meta.get("hnswlib")
        saved = mine.get("max_elements") if isinstance(mine, dict) else None
        count = len(ix) + ix.deleted_count
        if not isinstance(saved, int) or saved < count:
            saved = count
        self._index = ix
        self._max_elements = int(max_elements) if int(max_elements) >= count else saved
        self._allow_replace = bool(allow_replace_deleted)
        self._cur_l = count
        ix.ef = 10  # hnswlib does not keep ef in the file

    def index_file_size(self) -> int:
        with tempfile.TemporaryDirectory(prefix="smallworld-") as d:
            path = os.path.join(d, "index.bin")
            self.save_index(path)
            return os.path.getsize(path)

    def __repr__(self) -> str:
        return f"<hnswlib.Index(space='{self.space}', dim={self.dim})>"


_BF_MAGIC = b"SWBFIDX1"


def _load_npy(f: Any, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """One array of a BFIndex file, its header checked against what the file
    header promised before anything is allocated."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"array format {version}")
    if tuple(got_shape) != shape or fortran or got_dtype != np.dtype(dtype):
        raise ValueError(f"array of shape {got_shape} and type {got_dtype}, expected {shape}")
    count = int(np.prod(shape))
    a = np.fromfile(f, dtype=dtype, count=count) if count else np.zeros(0, dtype=dtype)
    if a.size != count:
        raise ValueError("file truncated")
    return a.reshape(shape)


class BFIndex:
    """hnswlib.BFIndex: exact search by scoring every stored vector."""

    def __init__(self, space: str, dim: int) -> None:
        _check_space(space)
        self.space: str = space
        self.dim: int = int(dim)
        self.num_threads: int = os.cpu_count() or 1
        self._inited = False
        self._max = 0
        self._cur_l = 0
        self._data = np.zeros((0, self.dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.uint64)
        self._where: dict = {}

    def init_index(self, max_elements: int) -> None:
        if self._inited:
            raise RuntimeError("The index is already initiated.")
        self._inited = True
        self._max = int(max_elements)
        self._cur_l = 0

    def _need(self) -> None:
        if not self._inited:
            raise RuntimeError("The index is not initiated; call init_index or load_index first.")

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        if self.space == "cosine":
            norms = np.sqrt((x.astype(np.float64) ** 2).sum(axis=1, keepdims=True)) + 1e-30
            x = (x / norms).astype(np.float32)
        return x

    def add_items(self, data: Any, ids: Any = None) -> None:
        self._need()
        x = _input_2d(data)
        rows = x.shape[0]
        if x.shape[1] != self.dim:
            raise RuntimeError("Wrong dimensionality of the vectors")
        labels = _input_ids(ids, rows, self._cur_l)
        x = self._prepare(x)
        if not np.isfinite(x).all():
            bad = int(np.nonzero(~np.isfinite(x).all(axis=1))[0][0])
            raise ValueError(f"vector contains NaN or infinity (row {bad})")
        new = len({int(v) for v in labels.tolist()} - set(self._where))
        if len(self._where) + new > self._max:
            raise RuntimeError("The number of elements exceeds the specified limit")
        if self._data.shape[0] < len(self._where) + new:
            grow = np.zeros((max(len(self._where) + new, 2 * self._data.shape[0]), self.dim),
                            dtype=np.float32)
            grow[: self._data.shape[0]] = self._data
            self._data = grow
            ids_grow = np.zeros(grow.shape[0], dtype=np.uint64)
            ids_grow[: self._ids.shape[0]] = self._ids
            self._ids = ids_grow
        for row, label in enumerate(labels.tolist()):
            at = self._where.get(label)
            if at is None:
                at = len(self._where)
                self._where[label] = at
                self._ids[at] = label
            self._data[at] = x[row]
        self._cur_l += rows

    def delete_vector(self, label: int) -> None:
        self._need()
        at = self._where.pop(int(label), None)
        if at is None:
            return
        last = len(self._where)
        if at != last:
            moved = int(self._ids[last])
            self._data[at] = self._data[last]
            self._ids[at] = moved
            self._where[moved] = at

    def knn_query(self, data: Any, k: int = 1, num_threads: int = -1,
                  filter: Optional[Callable[[int], bool]] = None) -> Tuple[np.ndarray, np.ndarray]:
        self._need()
        q = _input_2d(data)
        if q.shape[1] != self.dim:
            raise RuntimeError("Wrong dimensionality of the vectors")
        k = int(k)
        n = len(self._where)
        base = self._data[:n].astype(np.float64)
        ids = self._ids[:n]
        if filter is not None:
            keep = np.fromiter((bool(filter(int(v))) for v in ids.tolist()), dtype=bool, count=n)
            base, ids = base[keep], ids[keep]
        if base.shape[0] < k:
            raise RuntimeError(
                "Cannot return the results in a contiguous 2D array. Probably ef or M is too small")
        qq = self._prepare(q).astype(np.float64)
        out_l = np.empty((q.shape[0], k), dtype=np.uint64)
        out_d = np.empty((q.shape[0], k), dtype=np.float32)
        base_sq = (base ** 2).sum(axis=1)
        step = max(1, (1 << 23) // max(1, base.shape[0]))
        for lo in range(0, q.shape[0], step):
            block = qq[lo: lo + step]
            dots = block @ base.T
            if self.space == "l2":
                d = base_sq[None, :] - 2.0 * dots + (block ** 2).sum(axis=1)[:, None]
                np.maximum(d, 0.0, out=d)
            else:
                d = 1.0 - dots
            part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else \
                np.tile(np.arange(d.shape[1]), (d.shape[0], 1))
            pd = np.take_along_axis(d, part, axis=1)
            order = np.argsort(pd, axis=1, kind="stable")
            out_l[lo: lo + step] = ids[np.take_along_axis(part, order, axis=1)]
            out_d[lo: lo + step] = np.take_along_axis(pd, order, axis=1)
        return out_l, out_d

    def set_num_threads(self, num_threads: int) -> None:
        self.num_threads = int(num_threads)

    def get_max_elements(self) -> int:
        self._need()
        return self._max

    def get_current_count(self) -> int:
        self._need()
        return len(self._where)

    def save_index(self, path_to_index: str) -> None:
        self._need()
        n = len(self._where)
        head = json.dumps({"space": self.space, "dim": self.dim, "max_elements": self._max,
                           "count": n}).encode()
        d = os.path.dirname(os.path.abspath(path_to_index))
        fd, tmp = tempfile.mkstemp(prefix=".bfindex-", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_BF_MAGIC + len(head).to_bytes(4, "little") + head)
                np.save(f, self._ids[:n], allow_pickle=False)
                np.save(f, self._data[:n], allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path_to_index)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load_index(self, path_to_index: str, max_elements: int = 0) -> None:
        if self._inited:
            print("Warning: Calling load_index for an already inited index. Old index is being "
                  "deallocated.", file=sys.stderr)
        try:
            f = open(path_to_index, "rb")
        except OSError:
            raise RuntimeError("Cannot open file") from None
        with f:
            try:
                if f.read(8) != _BF_MAGIC:
                    raise ValueError("bad magic")
                hlen = int.from_bytes(f.read(4), "little")
                if hlen > 4096:
                    raise ValueError("header too long")
                head = json.loads(f.read(hlen).decode())
                if not isinstance(head, dict):
                    raise ValueError("header is not an object")
                if head["space"] != self.space or int(head["dim"]) != self.dim:
                    raise ValueError("space or dimension does not match")
                n = int(head["count"])
                if not 0 <= n <= os.fstat(f.fileno()).st_size // max(1, 4 * self.dim):
                    raise ValueError(f"count {n} does not fit in the file")
                ids = _load_npy(f, (n,), np.uint64)
                data = _load_npy(f, (n, self.dim), np.float32)
                max_elements = int(head.get("max_elements", n))
            except (ValueError, KeyError, TypeError, EOFError, OSError, RecursionError,
                    UnicodeDecodeError) as e:
                raise RuntimeError(f"Index seems to be corrupted or unsupported ({e})") from None
        where = {int(v): i for i, v in enumerate(ids.tolist())}
        if len(where) != n:
            raise RuntimeError("Index seems to be corrupted or unsupported (duplicate labels)")
        self._ids, self._data, self._where = ids.copy(), data.copy(), where
        self._max = max(max_elements, n)
        self._cur_l = n
        self._inited = True

    def __repr__(self) -> str:
        return f"<hnswlib.BFIndex(space='{self.space}', dim={self.dim})>"

