"""quarry.hr: hierarchical retrieval from Python, the library's pipeline end to end on a small tree."""

import numpy as np
import pytest

import quarry
from quarry import hr


def write_tree(tmp_path):
    """A complete binary tree of height 4 (31 nodes): node n's parent is (n - 1) // 2."""
    path = tmp_path / "edges.tsv"
    path.write_text("".join(f"n{n}\tn{(n - 1) // 2}\n" for n in range(1, 31)))
    return str(path)


def ancestors(n):
    out = [n]
    while n:
        n = (n - 1) // 2
        out.append(n)
    return out


def test_train_store_load_and_search(tmp_path):
    data = hr.Dataset.load(edges=write_tree(tmp_path), validation_fraction=0, test_fraction=0.2)
    assert (data.n_nodes, data.max_distance) == (31, 4)
    assert data.n_pairs == sum(len(ancestors(n)) for n in range(31))
    assert data.n_train + data.n_validation + data.n_test == data.n_pairs

    epochs = []
    trained = hr.train_embeddings(data, dim=16, batch=32, negatives=32, epochs=40, finetune_epochs=0, mask=True,
                                  on_epoch=lambda r: epochs.append((r.phase, r.epoch)))
    assert epochs == [("pretrain", e) for e in range(1, 41)]
    assert not trained.has_finetuned
    assert trained.standard_recall.all.overall >= 0.9
    final = trained.final
    assert final.queries.shape == final.docs.shape == (31, 16)
    assert np.allclose(np.linalg.norm(final.docs, axis=1), 1, atol=1e-5), "rows are unit length"

    target = str(tmp_path / "tree")
    hr.check_storable(target, data)
    hr.store_hierarchy(target, data, final)
    with quarry.Collection(target, read_only=True) as c:
        loaded = hr.load_embeddings(c, data)
        assert np.array_equal(loaded.docs, final.docs) and np.array_equal(loaded.queries, final.queries)
        report = hr.evaluate_embeddings(data, loaded)
        assert report.all.overall == pytest.approx(trained.standard_recall.all.overall)
        node, label, hits = hr.search_node(c, "n30", k=5)
        assert node == "n30" and label == ""
        # The hits are the documents nearest to n30's query row by inner product, computed here with numpy.
        keys = node_order()
        scores = final.docs @ final.queries[keys.index("n30")]
        assert list(hits.ids) == [keys[i] for i in np.argsort(-scores, kind="stable")[:5]]
        assert np.allclose(hits.scores, np.sort(scores)[::-1][:5], atol=1e-5)
        with pytest.raises(quarry.InvalidArgumentError):
            hr.search_node(c, "n30", k=0)
        with pytest.raises(quarry.NotFoundError):
            hr.search_node(c, "zebra", k=3)


def node_order():
    """The dataset's node order: an edge list creates nodes on first mention (child, then parent)."""
    order = []
    for n in range(1, 31):
        for key in (f"n{n}", f"n{(n - 1) // 2}"):
            if key not in order:
                order.append(key)
    return order


def test_errors_are_quarry_errors(tmp_path, tiny):
    data = hr.Dataset.load(edges=write_tree(tmp_path))
    with pytest.raises(quarry.FailedPreconditionError, match="holds no hierarchy"):
        hr.search_node(tiny, "heart", k=3)
    with pytest.raises(quarry.FailedPreconditionError):
        hr.check_storable(tiny.dir, data)
    with pytest.raises(quarry.InvalidArgumentError):
        hr.Embeddings(np.zeros((3, 4), np.float32), np.zeros((3, 5), np.float32))
    wrong = hr.Embeddings(np.zeros((30, 4), np.float32), np.zeros((30, 4), np.float32))
    with pytest.raises(quarry.InvalidArgumentError, match="30 nodes"):
        hr.store_hierarchy(str(tmp_path / "x"), data, wrong)
    with pytest.raises(quarry.InvalidArgumentError):
        hr.train_embeddings(data, softmax="full")
    with pytest.raises(quarry.NotFoundError):
        hr.Dataset.load(edges=str(tmp_path / "absent.tsv"))

    def stop(report):
        raise KeyboardInterrupt("stop")
    with pytest.raises(KeyboardInterrupt):
        hr.train_embeddings(data, dim=4, batch=8, negatives=8, epochs=2, finetune_epochs=0, on_epoch=stop)
