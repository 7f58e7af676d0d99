"""Tests of the hnswlib drop-in, smallworld.hnswlib.

What hnswlib 0.8 does is written out here (argument names and defaults,
exception types and messages, counting rules), checked once against
hnswlib 0.8 itself; hnswlib is not needed to run these tests.

Where these tests assert something hnswlib 0.8 does not do, it is on
purpose: knn_query checks the dimension; a batch over max_elements adds
nothing; NaN/inf are refused; a file of another space is refused; BFIndex
refuses k above the matches and normalises cosine queries (hnswlib 0.8's
BFIndex does not, so its cosine distances are 1 - dot with the raw query,
the labels being the same); with replace_deleted=True an update of a
present label does not take a tombstone's place (in hnswlib it does, and
the label is then in the index twice).
"""
import inspect
import pickle

import numpy as np
import pytest

import smallworld.hnswlib as hnswlib

from conftest import make_vectors, numpy_distances


def recall(found, truth):
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth)]
    return sum(hits) / float(truth.size)


def tombstones(p):
    """The tombstoned labels, found through hnswlib's API only: listed by
    get_ids_list, refused by get_items."""
    out = []
    for label in p.get_ids_list():
        try:
            p.get_items([label])
        except RuntimeError:
            out.append(label)
    return sorted(out)


def make(space="l2", dim=8, n=500, max_elements=None, seed=0, **init):
    p = hnswlib.Index(space=space, dim=dim)
    p.init_index(max_elements=n if max_elements is None else max_elements, **init)
    x = make_vectors(n, dim, seed)
    if n:
        p.add_items(x)
    return p, x


# ---------------------------------------------------------------- API surface


def params(fn):
    """(name, default) of each parameter after self."""
    sig = inspect.signature(fn)
    return [(p.name, p.default) for p in list(sig.parameters.values())[1:]]


E = inspect.Parameter.empty


def test_index_signatures():
    I = hnswlib.Index
    assert params(I.init_index) == [("max_elements", E), ("M", 16), ("ef_construction", 200),
                                    ("random_seed", 100), ("allow_replace_deleted", False)]
    assert params(I.knn_query) == [("data", E), ("k", 1), ("num_threads", -1), ("filter", None)]
    assert params(I.add_items) == [("data", E), ("ids", None), ("num_threads", -1),
                                   ("replace_deleted", False)]
    assert params(I.get_items) == [("ids", None), ("return_type", "numpy")]
    assert params(I.load_index) == [("path_to_index", E), ("max_elements", 0),
                                    ("allow_replace_deleted", False)]
    assert params(I.save_index) == [("path_to_index", E)]
    assert params(I.mark_deleted) == [("label", E)]
    assert params(I.unmark_deleted) == [("label", E)]
    assert params(I.resize_index) == [("new_size", E)]
    assert params(I.set_ef) == [("ef", E)]
    assert params(I.set_num_threads) == [("num_threads", E)]
    for name in ("get_ids_list", "get_max_elements", "get_current_count", "index_file_size"):
        assert params(getattr(I, name)) == []
    for prop in ("ef", "M", "max_elements", "element_count", "ef_construction"):
        assert isinstance(getattr(I, prop), property)


def test_bfindex_signatures():
    B = hnswlib.BFIndex
    assert params(B.init_index) == [("max_elements", E)]
    assert params(B.add_items) == [("data", E), ("ids", None)]
    assert params(B.knn_query) == [("data", E), ("k", 1), ("num_threads", -1), ("filter", None)]
    assert params(B.delete_vector) == [("label", E)]
    assert params(B.save_index) == [("path_to_index", E)]
    assert params(B.load_index) == [("path_to_index", E), ("max_elements", 0)]


def test_keyword_construction_and_attributes():
    p = hnswlib.Index(space="cosine", dim=12)
    assert p.space == "cosine" and p.dim == 12 and p.num_threads >= 1
    p.set_num_threads(3)
    assert p.num_threads == 3
    assert repr(p) == "<hnswlib.Index(space='cosine', dim=12)>"
    b = hnswlib.BFIndex(space="ip", dim=3)
    assert b.space == "ip" and b.dim == 3
    assert repr(b) == "<hnswlib.BFIndex(space='ip', dim=3)>"


# ---------------------------------------------------------------- errors


def test_bad_space():
    for space in ("l1", "L2", "euclidean", ""):
        with pytest.raises(RuntimeError, match="Space name must be one of l2, ip, or cosine"):
            hnswlib.Index(space=space, dim=4)
        with pytest.raises(RuntimeError, match="Space name must be one of l2, ip, or cosine"):
            hnswlib.BFIndex(space=space, dim=4)


def test_not_initialised():
    p = hnswlib.Index("l2", 4)
    for call in (lambda: p.add_items(np.zeros((1, 4))), lambda: p.knn_query(np.zeros(4)),
                 lambda: p.get_max_elements(), lambda: p.get_current_count(),
                 lambda: p.mark_deleted(0), lambda: p.get_ids_list(),
                 lambda: p.resize_index(10), lambda: p.save_index("unused.bin")):
        with pytest.raises(RuntimeError):
            call()


def test_init_twice():
    p, _ = make(n=10)
    with pytest.raises(RuntimeError, match="already initiated"):
        p.init_index(100)
    assert p.max_elements == 10 and p.element_count == 10


def test_wrong_dimensionality():
    p, x = make(n=20, dim=8)
    for bad in (np.zeros((2, 7)), np.zeros(9), np.zeros((1, 16))):
        with pytest.raises(RuntimeError, match="Wrong dimensionality of the vectors"):
            p.add_items(bad)
        with pytest.raises(RuntimeError, match="Wrong dimensionality of the vectors"):
            p.knn_query(bad)
    with pytest.raises(RuntimeError, match="wrong shape"):
        p.add_items(np.zeros((1, 1, 8)))
    with pytest.raises(RuntimeError, match="does not match"):
        p.add_items(np.zeros((3, 8)), ids=[1, 2])
    assert p.element_count == 20


def test_exceeding_max_elements_adds_nothing():
    p, x = make(n=0, max_elements=10)
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(make_vectors(11, 8, 1))
    assert p.element_count == 0 and p.get_ids_list() == []
    p.add_items(make_vectors(8, 8, 1))
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(make_vectors(3, 8, 2))
    assert p.element_count == 8 and sorted(p.get_ids_list()) == list(range(8))
    # updating existing labels does not count against the limit
    p.add_items(make_vectors(8, 8, 3), ids=np.arange(8))
    p.add_items(make_vectors(2, 8, 4), ids=[8, 9])
    assert p.element_count == 10
    # nor does a tombstone brought back (allow_replace_deleted=False)
    p.mark_deleted(3)
    p.add_items(make_vectors(1, 8, 5), ids=[3])
    assert p.element_count == 10 and 3 in p.get_ids_list()
    np.testing.assert_allclose(p.get_items([3])[0], make_vectors(1, 8, 5)[0])
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(make_vectors(1, 8, 6), ids=[10])


def test_resize_index():
    p, x = make(n=10)
    with pytest.raises(RuntimeError, match="Cannot resize"):
        p.resize_index(9)
    assert p.max_elements == 10
    p.resize_index(10)
    p.resize_index(25)
    assert p.max_elements == 25 and p.get_max_elements() == 25
    p.add_items(make_vectors(15, 8, 1))
    assert p.element_count == 25
    p.mark_deleted(0)
    with pytest.raises(RuntimeError, match="Cannot resize"):
        p.resize_index(24)  # tombstones still count


def test_mark_and_unmark_errors():
    p, x = make(n=20)
    p.mark_deleted(4)
    with pytest.raises(RuntimeError, match="already deleted"):
        p.mark_deleted(4)
    with pytest.raises(RuntimeError, match="Label not found"):
        p.mark_deleted(100)
    with pytest.raises(RuntimeError, match="not deleted"):
        p.unmark_deleted(5)
    with pytest.raises(RuntimeError, match="Label not found"):
        p.unmark_deleted(100)
    p.unmark_deleted(4)
    with pytest.raises(RuntimeError, match="not deleted"):
        p.unmark_deleted(4)
    assert p.element_count == 20 and tombstones(p) == []


def test_get_items_errors_and_results():
    p, x = make("l2", n=30)
    with pytest.raises(RuntimeError, match="Label not found"):
        p.get_items([100])
    with pytest.raises(RuntimeError, match="Label not found"):
        p.get_items([1, 100])
    p.mark_deleted(2)
    with pytest.raises(RuntimeError, match="Label not found"):
        p.get_items([2])
    with pytest.raises(ValueError, match="get_items accepts a list of indices"):
        p.get_items(1)
    with pytest.raises(ValueError, match='return_type should be "numpy" or "list"'):
        p.get_items([1], return_type="array")
    got = p.get_items([5, 1])
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (2, 8)
    np.testing.assert_array_equal(got, x[[5, 1]])
    got = p.get_items(np.array([7]), return_type="list")
    assert isinstance(got, list) and isinstance(got[0], list)
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), x[[7]])
    assert p.get_items().size == 0
    assert p.get_items([], return_type="list") == []


def test_get_items_cosine_is_normalised():
    p, x = make("cosine", n=30)
    got = p.get_items(list(range(30)))
    np.testing.assert_allclose(got, x / np.linalg.norm(x, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_k_larger_than_count():
    p, x = make(n=8, max_elements=20)
    labels, _ = p.knn_query(x[0], k=8)
    assert sorted(labels[0].tolist()) == list(range(8))
    with pytest.raises(RuntimeError, match="Cannot return the results in a contiguous 2D array"):
        p.knn_query(x[0], k=9)
    p.mark_deleted(0)  # tombstones are not results
    with pytest.raises(RuntimeError, match="Cannot return the results in a contiguous 2D array"):
        p.knn_query(x[:3], k=8)
    with pytest.raises(RuntimeError, match="Cannot return the results in a contiguous 2D array"):
        p.knn_query(x[:3], k=3, filter=lambda label: label < 3)


def test_replace_deleted_needs_allow_replace_deleted():
    p, x = make(n=10)
    p.mark_deleted(1)
    with pytest.raises(RuntimeError, match="Replacement of deleted elements is disabled"):
        p.add_items(make_vectors(1, 8, 1), ids=[50], replace_deleted=True)
    assert p.element_count == 10 and 50 not in p.get_ids_list()


def test_readding_a_tombstone_with_allow_replace_deleted():
    p, x = make(n=10, allow_replace_deleted=True)
    p.mark_deleted(1)
    with pytest.raises(RuntimeError, match="Can't use addPoint to update deleted elements"):
        p.add_items(make_vectors(1, 8, 1), ids=[1])
    assert tombstones(p) == [1]


def test_nan_is_refused_naming_the_row():
    p, x = make(n=5, max_elements=10)
    bad = np.zeros((3, 8), dtype=np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        p.add_items(bad)
    assert p.element_count == 5


# ---------------------------------------------------------------- properties


def test_properties_before_and_after_init():
    p = hnswlib.Index("ip", 6)
    assert (p.ef, p.M, p.max_elements, p.element_count, p.ef_construction) == (10, 0, 0, 0, 0)
    p.init_index(max_elements=50, M=12, ef_construction=77, random_seed=5)
    assert (p.ef, p.M, p.max_elements, p.element_count, p.ef_construction) == (10, 12, 50, 0, 77)
    assert p.get_max_elements() == 50 and p.get_current_count() == 0
    p.add_items(make_vectors(20, 6, 1))
    assert p.element_count == 20 and p.get_current_count() == 20
    p.mark_deleted(3)
    p.mark_deleted(4)
    assert p.element_count == 20 and p.get_current_count() == 20  # tombstones count
    assert sorted(p.get_ids_list()) == list(range(20))  # and are listed
    p.set_ef(40)
    assert p.ef == 40
    p.ef = 25
    assert p.ef == 25
    # ef set before init is the ef after it
    q = hnswlib.Index("l2", 3)
    q.set_ef(33)
    assert q.ef == 33
    q.init_index(10)
    assert q.ef == 33


def test_default_ids_and_explicit_ids():
    p, _ = make(n=0, max_elements=100)
    p.add_items(make_vectors(5, 8, 1))
    p.add_items(make_vectors(1, 8, 2), ids=40)  # a scalar id for one row
    p.add_items(make_vectors(3, 8, 3))
    # hnswlib's default ids count rows added so far, whatever their ids
    assert sorted(p.get_ids_list()) == [0, 1, 2, 3, 4, 6, 7, 8, 40]


def test_duplicate_ids_in_a_batch_last_row_wins():
    p, _ = make(n=0, max_elements=10)
    v = make_vectors(3, 8, 1)
    p.add_items(v, ids=[7, 8, 7])
    assert p.element_count == 2
    np.testing.assert_array_equal(p.get_items([7, 8]), v[[2, 1]])


# ---------------------------------------------------------------- searching


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_knn_query(space):
    kind = "normal" if space == "ip" else "clustered"
    x = make_vectors(2000, 16, 7, kind)
    q = make_vectors(50, 16, 8, kind)
    p = hnswlib.Index(space, 16)
    p.init_index(2000, random_seed=1)
    p.add_items(x)
    p.set_ef(100)
    labels, dists = p.knn_query(q, k=10)
    assert labels.shape == dists.shape == (50, 10)
    assert labels.dtype == np.uint64 and dists.dtype == np.float32
    assert (np.diff(dists, axis=1) >= 0).all()
    truth = np.array([np.argsort(numpy_distances(space, x, v), kind="stable")[:10] for v in q])
    assert recall(labels, truth) >= 0.95
    for row in range(50):
        np.testing.assert_allclose(
            dists[row], numpy_distances(space, x[labels[row].astype(np.int64)], q[row]),
            rtol=1e-4, atol=1e-4)
    one_l, one_d = p.knn_query(q[0], k=3)
    assert one_l.shape == (1, 3)  # hnswlib: a 1-D query gives a 1 x k result
    labels, _ = p.knn_query(q, k=5, filter=lambda label: label % 2 == 1, num_threads=2)
    assert (labels % 2 == 1).all()
    labels1, _ = p.knn_query(q, k=5, num_threads=1)
    labels2, _ = p.knn_query(q, k=5, num_threads=2)
    np.testing.assert_array_equal(labels1, labels2)


def test_filter_exception_propagates():
    p, x = make(n=300)

    def boom(label):
        raise KeyError("from the filter")

    with pytest.raises(KeyError, match="from the filter"):
        p.knn_query(x[:40], k=3, filter=boom, num_threads=2)


def test_list_input():
    p, x = make(n=100)
    labels, _ = p.knn_query(x[:3].tolist(), k=1)
    assert labels[:, 0].tolist() == [0, 1, 2]
    q, _ = make(n=0, max_elements=5)
    q.add_items([[1, 2, 3, 4, 5, 6, 7, 8]], ids=[3])
    np.testing.assert_array_equal(q.get_items([3]), [[1, 2, 3, 4, 5, 6, 7, 8]])


# ---------------------------------------------------------------- replace_deleted


def test_replace_deleted_when_full():
    p, x = make(n=20, max_elements=20, allow_replace_deleted=True)
    gone = [2, 5, 11, 19]
    for label in gone:
        p.mark_deleted(label)
    new = make_vectors(4, 8, 9)
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(new, ids=[100, 101, 102, 103])  # no replacing: full
    p.add_items(new, ids=[100, 101, 102, 103], replace_deleted=True)
    ids = sorted(p.get_ids_list())
    assert ids == sorted(set(range(20)) - set(gone)) + [100, 101, 102, 103]
    assert p.element_count == p.max_elements == 20
    assert tombstones(p) == []
    np.testing.assert_array_equal(p.get_items([100, 103]), new[[0, 3]])
    labels, _ = p.knn_query(new, k=1)
    assert labels[:, 0].tolist() == [100, 101, 102, 103]
    labels, _ = p.knn_query(x[gone], k=5)
    assert not np.isin(labels, gone).any()
    for label in gone:
        with pytest.raises(RuntimeError):
            p.unmark_deleted(label)
    assert p.knn_query(x[0], k=16)[0].shape == (1, 16)


def test_replace_fewer_than_all_tombstones():
    p, x = make(n=20, max_elements=20, allow_replace_deleted=True)
    gone = [1, 3, 5, 7, 9]
    for label in gone:
        p.mark_deleted(label)
    p.add_items(make_vectors(2, 8, 10), ids=[200, 201], replace_deleted=True)
    ids = p.get_ids_list()
    assert p.element_count == 20 and len(ids) == 20 and len(set(ids)) == 20
    assert 200 in ids and 201 in ids
    left = [label for label in gone if label in ids]
    assert len(left) == 3
    assert tombstones(p) == left
    labels, _ = p.knn_query(x, k=5)
    assert not np.isin(labels, left).any()
    p.unmark_deleted(left[0])
    labels, _ = p.knn_query(x[left[0]], k=1)
    assert labels[0, 0] == left[0]
    np.testing.assert_array_equal(p.get_items([left[0]])[0], x[left[0]])
    # replacing mixed with updates: only new labels take tombstoned places
    p.add_items(make_vectors(3, 8, 11), ids=[0, 300, 301], replace_deleted=True)
    assert p.element_count == 20 and tombstones(p) == []
    assert 0 in p.get_ids_list() and 300 in p.get_ids_list()
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(make_vectors(1, 8, 12), ids=[400], replace_deleted=True)


def test_replace_deleted_without_tombstones_behaves_like_add():
    p, x = make(n=5, max_elements=10, allow_replace_deleted=True)
    p.add_items(make_vectors(5, 8, 1), replace_deleted=True)
    assert p.element_count == 10
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(make_vectors(1, 8, 2), replace_deleted=True)


def test_failed_replace_leaves_tombstones():
    p, x = make(n=10, max_elements=10, allow_replace_deleted=True)
    p.mark_deleted(1)
    p.mark_deleted(3)
    bad = make_vectors(2, 8, 1)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError):
        p.add_items(bad, ids=[20, 21], replace_deleted=True)
    assert p.element_count == 10
    assert sorted(p.get_ids_list()) == list(range(10))
    p.unmark_deleted(1)


# ---------------------------------------------------------------- files


def test_save_load_keeps_max_elements(tmp_path):
    p, x = make("cosine", n=30, max_elements=50)
    p.mark_deleted(4)
    p.set_ef(80)
    path = str(tmp_path / "index.bin")
    p.save_index(path)
    q = hnswlib.Index("cosine", 8)
    q.load_index(path)
    assert q.max_elements == 50 and q.element_count == 30
    assert q.ef == 10  # hnswlib does not keep ef in the file
    assert q.M == p.M and q.ef_construction == p.ef_construction
    assert sorted(q.get_ids_list()) == list(range(30))
    assert tombstones(q) == [4]
    q.set_ef(80)
    want = p.knn_query(x[:10], k=5)
    got = q.knn_query(x[:10], k=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    q.add_items(make_vectors(20, 8, 1))  # up to the saved limit
    assert q.element_count == 50
    assert sorted(q.get_ids_list())[-1] == 49  # default ids continue after the count
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        q.add_items(make_vectors(1, 8, 2))
    assert p.index_file_size() == (tmp_path / "index.bin").stat().st_size


def test_load_index_max_elements_argument(tmp_path):
    p, x = make(n=30, max_elements=50)
    path = str(tmp_path / "index.bin")
    p.save_index(path)
    bigger = hnswlib.Index("l2", 8)
    bigger.load_index(path, max_elements=80)
    assert bigger.max_elements == 80
    smaller = hnswlib.Index("l2", 8)
    smaller.load_index(path, max_elements=40)
    assert smaller.max_elements == 40
    too_small = hnswlib.Index("l2", 8)
    too_small.load_index(path, max_elements=10)  # below the count: the saved limit
    assert too_small.max_elements == 50
    replacing = hnswlib.Index("l2", 8)
    replacing.load_index(path, allow_replace_deleted=True)
    replacing.mark_deleted(0)
    replacing.add_items(make_vectors(1, 8, 3), ids=[99], replace_deleted=True)
    assert 0 not in replacing.get_ids_list() and 99 in replacing.get_ids_list()


@pytest.mark.parametrize("space,dim", [("l2", 8), ("ip", 8), ("cosine", 9)])
def test_load_index_space_or_dim_mismatch(tmp_path, space, dim):
    p, x = make("cosine", n=10)
    path = str(tmp_path / "index.bin")
    p.save_index(path)
    q = hnswlib.Index(space, dim)
    with pytest.raises(RuntimeError):
        q.load_index(path)


def test_load_index_space_or_dim_mismatch_is_refused(tmp_path):
    """Whatever the exception, the file is not taken."""
    p, x = make("cosine", n=10)
    path = str(tmp_path / "index.bin")
    p.save_index(path)
    for space, dim in (("l2", 8), ("ip", 8), ("cosine", 9)):
        q = hnswlib.Index(space, dim)
        with pytest.raises((RuntimeError, ValueError)):
            q.load_index(path)
        with pytest.raises(RuntimeError):
            q.knn_query(np.zeros(dim))  # still not initialised


def test_load_index_errors(tmp_path):
    q = hnswlib.Index("l2", 8)
    with pytest.raises(RuntimeError, match="Cannot open file"):
        q.load_index(str(tmp_path / "missing.bin"))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(RuntimeError, match="corrupted"):
        q.load_index(str(garbage))
    with pytest.raises(RuntimeError):
        q.add_items(np.zeros((1, 8)))


def test_load_index_over_an_initialised_index(tmp_path, capfd):
    p, x = make(n=10, max_elements=10)
    path = str(tmp_path / "index.bin")
    p.save_index(path)
    q, _ = make(n=3, max_elements=5, seed=1)
    q.load_index(path)
    assert "Warning" in capfd.readouterr().err
    assert q.element_count == 10 and q.max_elements == 10
    np.testing.assert_array_equal(q.get_items([9]), x[[9]])


def test_pickle_round_trip():
    p, x = make("ip", n=200, max_elements=300, M=8, ef_construction=60)
    p.mark_deleted(7)
    p.set_ef(50)
    copy = pickle.loads(pickle.dumps(p))
    assert (copy.space, copy.dim, copy.max_elements, copy.element_count, copy.ef, copy.M,
            copy.ef_construction) == ("ip", 8, 300, 200, 50, 8, 60)
    assert sorted(copy.get_ids_list()) == list(range(200))
    want = p.knn_query(x[:20], k=5)
    got = copy.knn_query(x[:20], k=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    copy.add_items(make_vectors(1, 8, 1))
    assert 200 in copy.get_ids_list() and 200 not in p.get_ids_list()
    copy.unmark_deleted(7)
    with pytest.raises(RuntimeError, match="already deleted"):
        p.mark_deleted(7)
    # hnswlib's copy constructor, by keyword
    other = hnswlib.Index(index=p)
    assert other.element_count == 200 and other.max_elements == 300
    np.testing.assert_array_equal(other.knn_query(x[:5], k=5)[0], want[0][:5])


def test_copy_constructor_positional():
    p, x = make(n=10)
    other = hnswlib.Index(p)
    assert other.element_count == 10


def test_pickle_uninitialised():
    p = hnswlib.Index("cosine", 5)
    p.set_ef(20)
    copy = pickle.loads(pickle.dumps(p))
    assert copy.space == "cosine" and copy.dim == 5
    assert (copy.ef, copy.M, copy.max_elements, copy.element_count) == (20, 0, 0, 0)
    with pytest.raises(RuntimeError):
        copy.knn_query(np.zeros(5))
    copy.init_index(3)
    copy.add_items(np.ones((3, 5)))
    assert copy.element_count == 3 and copy.ef == 20


# ---------------------------------------------------------------- BFIndex


def bf_reference(space, base, ids, queries, k):
    out_l, out_d = [], []
    for v in queries:
        d = numpy_distances("ip" if space == "ip" else space, base, v)
        order = np.argsort(d, kind="stable")[:k]
        out_l.append(ids[order])
        out_d.append(d[order])
    return np.array(out_l), np.array(out_d)


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_bfindex_exact(space):
    x = make_vectors(700, 12, 40, "normal")
    q = make_vectors(30, 12, 41, "normal")
    ids = np.arange(1000, 1700)
    b = hnswlib.BFIndex(space=space, dim=12)
    b.init_index(max_elements=700)
    b.add_items(x, ids)
    assert b.get_current_count() == 700 and b.get_max_elements() == 700
    labels, dists = b.knn_query(q, k=10)
    assert labels.shape == dists.shape == (30, 10)
    assert labels.dtype == np.uint64 and dists.dtype == np.float32
    ref_l, ref_d = bf_reference(space, x, ids, q, 10)
    np.testing.assert_allclose(dists, ref_d, rtol=1e-5, atol=1e-5)
    # labels equal up to swaps between distances equal within 1e-5
    for row in range(30):
        got = numpy_distances(space, x[labels[row] - 1000], q[row])
        np.testing.assert_allclose(got, ref_d[row], rtol=1e-5, atol=1e-5)
        assert len(set(labels[row].tolist())) == 10
    one_l, _ = b.knn_query(q[0], k=3)
    assert one_l.shape == (1, 3)
    all_l, _ = b.knn_query(q[:2], k=700)
    assert sorted(all_l[0].tolist()) == ids.tolist()


def test_bfindex_filter_and_delete():
    x = make_vectors(300, 6, 42)
    q = make_vectors(10, 6, 43)
    b = hnswlib.BFIndex("l2", 6)
    b.init_index(300)
    b.add_items(x)
    labels, _ = b.knn_query(q, k=5, filter=lambda label: label % 4 == 0)
    assert (labels % 4 == 0).all()
    keep = np.arange(0, 300, 4)
    ref_l, _ = bf_reference("l2", x[keep], keep, q, 5)
    np.testing.assert_array_equal(labels, ref_l)
    with pytest.raises(RuntimeError, match="Cannot return the results in a contiguous 2D array"):
        b.knn_query(q, k=3, filter=lambda label: label < 2)
    gone = [int(v) for v in b.knn_query(q[0], k=3)[0][0]]
    for label in gone:
        b.delete_vector(label)
    b.delete_vector(12345)  # unknown: ignored, as hnswlib
    assert b.get_current_count() == 297
    labels, _ = b.knn_query(q, k=20)
    assert not np.isin(labels, gone).any()
    rest = np.array(sorted(set(range(300)) - set(gone)))
    ref_l, _ = bf_reference("l2", x[rest], rest, q, 20)
    np.testing.assert_array_equal(labels, ref_l)
    # freed places take new vectors; updates keep the count
    b.add_items(make_vectors(3, 6, 44), ids=[900, 901, 902])
    b.add_items(make_vectors(1, 6, 45), ids=[0])
    assert b.get_current_count() == 300
    labels, _ = b.knn_query(make_vectors(1, 6, 45), k=1)
    assert labels[0, 0] == 0


def test_bfindex_capacity_and_errors():
    b = hnswlib.BFIndex("cosine", 4)
    with pytest.raises(RuntimeError):
        b.add_items(np.ones((1, 4)))
    b.init_index(5)
    with pytest.raises(RuntimeError, match="already initiated"):
        b.init_index(10)
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        b.add_items(np.ones((6, 4)))
    assert b.get_current_count() == 0
    b.add_items(make_vectors(4, 4, 1))
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        b.add_items(make_vectors(2, 4, 2))
    b.add_items(make_vectors(1, 4, 3))
    assert b.get_current_count() == 5
    b.add_items(make_vectors(2, 4, 4), ids=[0, 1])  # updates
    assert b.get_current_count() == 5
    with pytest.raises(RuntimeError, match="Wrong dimensionality of the vectors"):
        b.add_items(np.ones((1, 5)))
    with pytest.raises(RuntimeError, match="Wrong dimensionality of the vectors"):
        b.knn_query(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="Cannot return the results"):
        b.knn_query(np.ones(4), k=6)
    bad = np.ones((2, 4))
    bad[1, 2] = np.inf
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="row 1"):
        b.add_items(bad, ids=[0, 1])
    assert b.get_current_count() == 5


def test_bfindex_save_load(tmp_path):
    x = make_vectors(200, 8, 46)
    q = make_vectors(15, 8, 47)
    b = hnswlib.BFIndex("ip", 8)
    b.init_index(250)
    b.add_items(x, np.arange(200) * 3)
    b.delete_vector(9)
    path = str(tmp_path / "bf.bin")
    b.save_index(path)
    c = hnswlib.BFIndex("ip", 8)
    c.load_index(path)
    assert c.get_current_count() == 199 and c.get_max_elements() == 250
    want = b.knn_query(q, k=7)
    got = c.knn_query(q, k=7)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not np.isin(got[0], [9]).any()
    c.add_items(make_vectors(51, 8, 48), np.arange(1000, 1051))
    assert c.get_current_count() == 250
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        c.add_items(make_vectors(1, 8, 49), [2000])
    for space, dim in (("l2", 8), ("ip", 7)):
        with pytest.raises(RuntimeError):
            hnswlib.BFIndex(space, dim).load_index(path)
    with pytest.raises(RuntimeError, match="Cannot open file"):
        hnswlib.BFIndex("ip", 8).load_index(str(tmp_path / "missing.bin"))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"SWBFIDX1" + b"\xff" * 40)
    with pytest.raises(RuntimeError, match="corrupted"):
        hnswlib.BFIndex("ip", 8).load_index(str(garbage))
    data = (tmp_path / "bf.bin").read_bytes()
    garbage.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="corrupted"):
        hnswlib.BFIndex("ip", 8).load_index(str(garbage))


# ------------------------------------------------------- review follow-ups


def test_replace_deleted_brings_back_a_tombstoned_label():
    """mark_deleted(x) then add_items(v, [x], replace_deleted=True): hnswlib
    0.8 accepts this; the label comes back with the new vector."""
    p, x = make(n=20, max_elements=20, allow_replace_deleted=True)
    p.mark_deleted(3)
    p.mark_deleted(7)
    v = np.full((1, 8), 0.25, dtype=np.float32)
    p.add_items(v, [3], replace_deleted=True)
    assert np.allclose(p.get_items([3]), v)
    assert p.element_count == 20
    assert sorted(p.get_ids_list()) == list(range(20))
    p.add_items(v + 1, [100], replace_deleted=True)  # takes 7's place
    assert 7 not in p.get_ids_list() and p.element_count == 20


def test_bf_load_refuses_a_crafted_count(tmp_path):
    bf = hnswlib.BFIndex("l2", 4)
    bf.init_index(10)
    bf.add_items(np.ones((3, 4), dtype=np.float32))
    path = str(tmp_path / "bf.bin")
    bf.save_index(path)
    raw = open(path, "rb").read()
    crafted = raw.replace(b'"count": 3', b'"count": 9999999999', 1)
    assert crafted != raw
    with open(path, "wb") as f:
        f.write(crafted)
    with pytest.raises(RuntimeError, match="corrupted"):
        hnswlib.BFIndex("l2", 4).load_index(path)
