"""quarry.evaluate against pytrec_eval (trec_eval's C code) on real runs and on runs with ties, to 1e-6."""

import random

import pytest

import quarry
from conftest import shared

pytrec_eval = pytest.importorskip("pytrec_eval", reason="needs pytrec_eval (pip install pytrec-eval-terrier)")

# quarry's metric name -> pytrec_eval's measure and result key
MEASURES = {
    "ndcg_cut.10": ("ndcg_cut.10", "ndcg_cut_10"),
    "ndcg_cut.100": ("ndcg_cut.100", "ndcg_cut_100"),
    "recall.100": ("recall.100", "recall_100"),
    "recall.1000": ("recall.1000", "recall_1000"),
    "P.10": ("P.10", "P_10"),
    "map": ("map", "map"),
    "map_cut.100": ("map_cut.100", "map_cut_100"),
    "recip_rank": ("recip_rank", "recip_rank"),
}


def assert_agrees(qrels, run, relevance_level=1):
    """Per query and mean, every measure. trec_eval scores the queries of the run; quarry, like trec_eval -c,
    every judged query (the others score 0), so means are compared over the qrels' queries."""
    as_dicts = {q: {d: float(s) for d, s in entries} for q, entries in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {m for m, _ in MEASURES.values()},
                                               relevance_level=relevance_level)
    reference = evaluator.evaluate(as_dicts)
    ours = quarry.evaluate(qrels, run, ",".join(MEASURES), relevance_level=relevance_level)
    assert ours.qids == sorted(qrels)
    for ours_name, (_, key) in zip(ours.metrics, MEASURES.values()):
        per = ours.per_query[ours_name]
        for qid in qrels:
            want = reference[qid][key] if qid in reference else 0.0
            assert per[qid] == pytest.approx(want, abs=1e-6), (ours_name, qid)
        want_mean = sum(reference[q][key] for q in reference) / len(qrels)
        assert ours.mean[ours_name] == pytest.approx(want_mean, abs=1e-6), ours_name
    return ours


def test_dl2019_bm25_run():
    data = shared("datasets/trec-dl-2019-passage")
    qrels = quarry.load_qrels(str(data / "qrels.txt"))
    run = quarry.load_run(str(data / "run.bm25.trec"))
    ours = assert_agrees(qrels, run)
    assert ours.mean["nDCG@10"] == pytest.approx(0.5058, abs=5e-5)  # the published Anserini BM25 figure


def test_dl2019_at_relevance_level_2():
    """TREC DL reports recall and MAP with grade >= 2 relevant (trec_eval -l 2); nDCG does not change."""
    data = shared("datasets/trec-dl-2019-passage")
    qrels = quarry.load_qrels(str(data / "qrels.txt"))
    run = quarry.load_run(str(data / "run.bm25.trec"))
    ours = assert_agrees(qrels, run, relevance_level=2)
    level_1 = quarry.evaluate(qrels, run, "ndcg_cut.10,recall.100")
    assert ours.mean["nDCG@10"] == level_1.mean["nDCG@10"]
    assert ours.mean["Recall@100"] != level_1.mean["Recall@100"]
    with pytest.raises(ValueError, match="relevance_level"):
        quarry.evaluate(qrels, run, "map", relevance_level=0)


def test_scifact_bm25_runs(scifact_dir, scifact_test_queries):
    path, _ = scifact_dir
    queries, qrels = scifact_test_queries
    with quarry.Collection(str(path), read_only=True) as c:
        results = c.batch_search([t for _, t in queries], 1000, hydrate=False)
    run = {q: hits for (q, _), hits in zip(queries, results)}
    pairs = {q: [(h.id, h.score) for h in hits] for q, hits in run.items()}
    ours = assert_agrees(qrels, pairs)
    assert ours.mean["nDCG@10"] == pytest.approx(0.6789, abs=5e-5)  # Pyserini's BM25 flat on SciFact
    # the same run with half the queries missing: they score 0 in quarry (trec_eval -c)
    assert_agrees(qrels, dict(list(pairs.items())[::2]))


def test_runs_with_ties():
    data = shared("datasets/trec-dl-2019-passage")
    qrels = quarry.load_qrels(str(data / "qrels.txt"))
    run = quarry.load_run(str(data / "run.bm25.trec"))
    # scores rounded to whole numbers: most ranks tie, and trec_eval breaks ties by docid descending
    coarse = {q: [(d, float(round(s))) for d, s in entries] for q, entries in run.items()}
    assert_agrees(qrels, coarse)
    # every score equal, in shuffled file order
    rng = random.Random(5)
    flat = {}
    for q, entries in run.items():
        shuffled = [(d, 1.0) for d, _ in entries]
        rng.shuffle(shuffled)
        flat[q] = shuffled
    assert_agrees(qrels, flat)


def test_graded_synthetic_qrels_with_unjudged_and_empty_queries():
    rng = random.Random(11)
    docs = [f"d{i:03d}" for i in range(60)]
    qrels = {f"q{q}": {d: rng.choice([0, 0, 1, 2, 3]) for d in rng.sample(docs, 15)} for q in range(25)}
    qrels["q_none_relevant"] = {"d001": 0}
    run = {q: [(d, rng.choice([1.0, 2.0, 2.5, 3.0])) for d in rng.sample(docs, 40)] for q in qrels}
    run["q_not_judged"] = [("d001", 1.0)]
    for level in (1, 2, 3):
        assert_agrees(qrels, run, relevance_level=level)
