"""quarry.compat.LuceneSearcher: Pyserini's searcher interface over a Quarry collection."""

import json

import pytest

import quarry
from quarry.compat import LuceneSearcher


def test_lucene_searcher_interface(scifact_dir, scifact_test_queries):
    path, _ = scifact_dir
    queries, qrels = scifact_test_queries
    searcher = LuceneSearcher(str(path))
    assert searcher.num_docs == 5183
    searcher.set_bm25(0.9, 0.4)
    with pytest.raises(NotImplementedError):
        searcher.set_bm25(1.2, 0.75)
    hits = searcher.search(queries[0][1], k=10)
    assert len(hits) == 10 and all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    doc = searcher.doc(hits[0].docid)
    raw = json.loads(doc.raw())
    assert doc.docid() == hits[0].docid == raw["_id"]
    assert hits[0].contents == doc.contents() and raw["text"] in doc.contents()
    assert searcher.doc("no-such-doc") is None
    qids = [q for q, _ in queries]
    results = searcher.batch_search([t for _, t in queries], qids, k=100, threads=2)
    assert list(results) == qids
    assert [(h.docid, h.score) for h in results[qids[0]][:10]] == [(h.docid, h.score) for h in hits]
    ev = quarry.evaluate(qrels, {q: [(h.docid, h.score) for h in r] for q, r in results.items()}, "ndcg_cut.10")
    assert ev.mean["nDCG@10"] == pytest.approx(0.6789, abs=5e-5)  # Pyserini's BM25 flat figure
    with pytest.raises(ValueError, match="qids"):
        searcher.batch_search(["a", "b"], ["q1"])
    searcher.close()
