"""Round trips, every search mode, batch search, errors (quarry.Collection)."""

import json
import math

import numpy as np
import pytest

import quarry
from conftest import TINY_DOCS, fetched_model, shared, write_jsonl


def test_ingest_get_delete_round_trip(tiny):
    assert len(tiny) == len(TINY_DOCS)
    doc = tiny.get("t0")
    assert (doc.id, doc.title, doc.text) == ("t0", "Statins", TINY_DOCS[0]["text"])
    assert json.loads(doc.metadata) == {"year": 2001}
    assert tiny.get("t1").metadata == ""
    assert tiny.get("missing") is None
    # an upsert replaces by id
    assert tiny.ingest([quarry.Document("t1", "New", "replaced text")]) == 1
    assert tiny.get("t1").text == "replaced text" and len(tiny) == len(TINY_DOCS)
    assert tiny.delete("t1") is True
    assert tiny.delete("t1") is False
    assert tiny.get("t1") is None and len(tiny) == len(TINY_DOCS) - 1
    assert "t1" not in [h.id for h in tiny.search("cholesterol transport liver", 10)]
    assert tiny.check().ok


def test_ingest_accepts_beir_ids_and_batches(tmp_path):
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        n = c.ingest(({"_id": f"d{i}", "text": f"document number {i}"} for i in range(2500)), batch_docs=1000)
        assert n == 2500 and len(c) == 2500
        assert c.get("d2499").text == "document number 2499"


@pytest.mark.parametrize("fmt,lines,options", [
    ("beir", [json.dumps({"_id": "a", "title": "T", "text": "alpha beta", "metadata": {"k": 1}})], {}),
    ("msmarco", ["a\talpha beta"], {}),
    ("jsonl", [json.dumps({"pid": "a", "body": "alpha beta"})], {"id_field": "pid", "text_field": "body"}),
])
def test_ingest_file_formats(tmp_path, fmt, lines, options):
    corpus = tmp_path / "corpus"
    corpus.write_text("\n".join(lines) + "\n")
    batches = []
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        report = c.ingest_file(str(corpus), fmt, progress=batches.append, **options)
        assert (report.n_read, report.n_added, report.n_skipped) == (1, 1, 0)
        assert [b.total_docs for b in batches] == [1]
        assert c.get("a").text == "alpha beta"
        assert c.search("beta", 1)[0].id == "a"


def test_ingest_file_bad_line_names_file_and_line_and_keeps_earlier_batches(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    good = [json.dumps({"_id": f"d{i}", "text": "fine"}) for i in range(3)]
    corpus.write_text("\n".join(good + ["{not json", json.dumps({"_id": "d9", "text": "after"})]) + "\n")
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        with pytest.raises(quarry.InvalidArgumentError) as e:
            c.ingest_file(str(corpus), batch_docs=2)
        assert f"{corpus}:4" in str(e.value) and e.value.code == "InvalidArgument"
        assert len(c) == 2  # the first batch of two was committed; the failing batch was not applied
        report = c.ingest_file(str(corpus), skip_invalid=True)
        assert (report.n_read, report.n_skipped) == (4, 1)


def test_errors_are_typed_exceptions_with_codes(tmp_path, tiny):
    with pytest.raises(quarry.NotFoundError) as e:
        quarry.Collection(str(tmp_path / "absent"))
    assert isinstance(e.value, LookupError) and isinstance(e.value, quarry.QuarryError)
    assert e.value.code == "NotFound" and str(tmp_path / "absent") in e.value.message
    with pytest.raises(quarry.NotFoundError):
        tiny.ingest_file(str(tmp_path / "no-such-corpus.jsonl"))
    with pytest.raises(quarry.InvalidArgumentError, match="mode 'sparse'"):
        tiny.search("heart", mode="sparse")
    with pytest.raises(ValueError, match="fusion"):
        tiny.search("heart", mode="hybrid", fusion="max")
    with pytest.raises(quarry.InvalidArgumentError, match="no 'id'"):
        tiny.ingest([{"text": "no id"}])
    with pytest.raises(quarry.InvalidArgumentError, match="expected a dict"):
        tiny.ingest(["just a string"])
    with pytest.raises(quarry.InvalidArgumentError, match="unknown metric"):
        quarry.evaluate({"q": {"t0": 1}}, {"q": []}, "bleu@4")
    with pytest.raises(quarry.NotFoundError, match="qrels"):
        quarry.load_qrels(str(tmp_path / "absent.tsv"))


def test_vectors_in_and_out_as_numpy_and_shape_errors(tiny):
    ids = [d["id"] for d in TINY_DOCS]
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(ids), 8)).astype(np.float32)
    tiny.put_vectors(ids, vectors)
    got = tiny.get_vector("t3")
    assert got.dtype == np.float32 and got.shape == (8,)
    np.testing.assert_array_equal(got, vectors[3])
    assert tiny.get_vector("t3", table="queries") is None
    # float64 and non-contiguous arrays are converted, not misread
    tiny.put_vectors(["t0", "t1"], vectors[[1, 0]].astype(np.float64)[:, :])
    np.testing.assert_array_equal(tiny.get_vector("t0"), vectors[1])
    tiny.put_vectors(["t0", "t1"], np.asfortranarray(vectors[[0, 1]]))
    np.testing.assert_array_equal(tiny.get_vector("t1"), vectors[1])
    with pytest.raises(quarry.InvalidArgumentError, match=r"expected a 2-D array, got shape \(8,\)"):
        tiny.put_vectors(["t0"], vectors[0])
    with pytest.raises(quarry.InvalidArgumentError, match="2 rows for 1 ids"):
        tiny.put_vectors(["t0"], vectors[:2])
    with pytest.raises(quarry.InvalidArgumentError, match="dim"):
        tiny.put_vectors(["t0"], np.zeros((1, 5), np.float32))
    with pytest.raises(quarry.InvalidArgumentError, match="float32 or float64"):
        tiny.put_vectors(["t0"], np.zeros((1, 8), np.int32))
    with pytest.raises(quarry.NotFoundError):
        tiny.put_vectors(["nope"], np.zeros((1, 8), np.float32))
    with pytest.raises(TypeError):
        tiny.put_vectors(["t0"], [[0.0] * 8])
    # exact inner-product search over the imported vectors
    assert tiny.build_dense_index("Flat") == len(ids)
    q = rng.standard_normal(8).astype(np.float32)
    hits = tiny.search_vector(q, 3)
    want = np.argsort(-(vectors @ q), kind="stable")[:3]
    assert [h.id for h in hits] == [ids[i] for i in want]
    np.testing.assert_allclose([h.score for h in hits], (vectors @ q)[want], rtol=1e-5)
    with pytest.raises(quarry.InvalidArgumentError, match="1-D"):
        tiny.search_vector(vectors[:2], 3)
    assert tiny.dense_info()["n_vectors"] == len(ids)


def test_bm25_hits_carry_stages_and_text(tiny):
    hits = tiny.search("statins cholesterol", 3)
    assert hits[0].id == "t0" and hits[0].title == "Statins" and hits[0].text == TINY_DOCS[0]["text"]
    assert all(h.stages.bm25 == pytest.approx(h.score) for h in hits)
    assert all(math.isnan(h.stages.dense) and math.isnan(h.stages.rerank) for h in hits)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    bare = tiny.search("statins cholesterol", 3, hydrate=False)
    assert [h.id for h in bare] == [h.id for h in hits] and bare[0].text == ""
    exhaustive = tiny.search("statins cholesterol", 3, exhaustive=True)
    assert [(h.id, h.score) for h in exhaustive] == [(h.id, h.score) for h in hits]
    assert "statins" in hits[0].snippet.lower() and hits[0].highlights


def test_batch_search_equals_single_searches(scifact_dir, scifact_test_queries):
    path, _ = scifact_dir
    queries, _ = scifact_test_queries
    texts = [t for _, t in queries[:100]]
    with quarry.Collection(str(path), read_only=True) as c:
        for threads in (0, 1, 2):
            batch = c.batch_search(texts, 20, threads=threads, hydrate=False)
            assert len(batch) == len(texts)
            for text, hits in zip(texts, batch):
                assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in c.search(text, 20, hydrate=False)]


def test_dense_and_hybrid_with_an_encoder(tmp_path):
    model = shared("fixtures/tiny-bert")
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        progress = []
        assert c.build_dense_index("Flat", encoder=str(model), progress=lambda done, total: progress.append((done, total))) == 6
        assert progress and progress[-1] == (6, 6)
        ids = [d["id"] for d in TINY_DOCS]
        dense = c.search("heart muscle", 6, mode="dense")
        scores = c.dense_scores("heart muscle", ids)
        assert scores.dtype == np.float32 and scores.shape == (6,)
        by_id = dict(zip(ids, scores))
        for h in dense:
            assert h.score == pytest.approx(by_id[h.id], abs=1e-5) and h.stages.dense == h.score
        assert [h.id for h in dense] == sorted(ids, key=lambda i: -by_id[i])
        bm25 = {h.id: r for r, h in enumerate(c.search("heart muscle", 100))}
        dense_rank = {h.id: r for r, h in enumerate(dense)}
        hybrid = c.search("heart muscle", 6, mode="hybrid", fusion="rrf", rrf_k=60)
        for h in hybrid:  # reciprocal rank fusion, by hand
            want = sum(1.0 / (60 + ranks[h.id] + 1) for ranks in (bm25, dense_rank) if h.id in ranks)
            assert h.score == pytest.approx(want, rel=1e-6)
        linear = c.search("heart muscle", 3, mode="hybrid", fusion="linear", alpha=1.0)
        assert [h.id for h in linear] == [h.id for h in dense[:3]]
        assert [[h.id for h in r] for r in c.batch_search(["heart muscle"], 6, mode="hybrid")] == [[h.id for h in hybrid]]


def test_rerank_scores_and_search_with_rerank(tmp_path):
    model = shared("fixtures/tiny-mistral")
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        assert not c.has_reranker
        with pytest.raises(quarry.InvalidArgumentError):
            c.load_reranker(str(model), scoring_layer=9)  # tiny-mistral has 4 layers
        c.load_reranker(str(model), scoring_layer=2, depth=5)
        assert c.has_reranker
        first = c.search("heart cholesterol", 5)
        scores = c.rerank_scores("heart cholesterol", [h.id for h in first])
        assert scores.dtype == np.float64 and scores.shape == (5,)
        reranked = c.search("heart cholesterol", 5, rerank=True)
        by_id = dict(zip([h.id for h in first], scores))
        assert sorted(h.id for h in reranked) == sorted(by_id)
        for h in reranked:
            assert h.stages.rerank == pytest.approx(by_id[h.id], abs=1e-9)
        assert [h.id for h in reranked] == sorted(by_id, key=lambda i: -by_id[i])
        with pytest.raises(quarry.NotFoundError, match="nope"):
            c.rerank_scores("heart", ["t0", "nope"])


def test_rerank_layers_and_decoupled_caches(tmp_path):
    model = shared("fixtures/tiny-mistral")
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        options = dict(scoring_layer=3, max_block_length=64, query_in_instruction=False)
        c.load_reranker(str(model), **options)
        ids = [h.id for h in c.search("heart cholesterol", 4)]
        uncached = c.rerank_scores_at_layers("heart cholesterol", ids, [1, 3])
        assert uncached.dtype == np.float64 and uncached.shape == (2, len(ids))
        np.testing.assert_allclose(uncached[1], c.rerank_scores("heart cholesterol", ids), atol=1e-12)
        progress = []
        n = c.build_rerank_cache(str(model), progress=lambda done, total: progress.append((done, total)), **options)
        assert n == len(TINY_DOCS) and progress and progress[-1] == (n, n)
        c.load_reranker(str(model), **options)
        np.testing.assert_allclose(c.rerank_scores_at_layers("heart cholesterol", ids, [1, 3]), uncached, atol=1e-5)
        with pytest.raises(quarry.InvalidArgumentError, match="ascend"):
            c.rerank_scores_at_layers("heart cholesterol", ids, [3, 1])
        with pytest.raises(ZeroDivisionError):
            c.build_rerank_cache(str(model), progress=lambda done, total: 1 / 0, **options)


def test_quantized_activations_move_scores_little(tmp_path):
    gguf = fetched_model("SmolLM2-135M-Instruct-Q4_1") / "model.gguf"
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        options = dict(scoring_layer=10, max_block_length=64, query_in_instruction=False)
        ids = [h.id for h in c.search("heart cholesterol", 4)]
        c.load_reranker(str(gguf), **options)
        exact = c.rerank_scores("heart cholesterol", ids)
        c.load_reranker(str(gguf), quantized_activations=True, **options)
        quantized = c.rerank_scores("heart cholesterol", ids)
        # 8-bit activations (int8 dot products where the CPU has AVX2 or AVX512-VNNI; otherwise the same float32
        # arithmetic): attention shares within their rounding (the CLI test measures 3.3e-3 at most).
        np.testing.assert_allclose(quantized, exact, atol=0.02)


def test_resmem_corrects_towards_training_judgements(tmp_path):
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        with pytest.raises(quarry.NotFoundError):
            c.resmem_info()
        queries = {f"q{i}": "heart blood" for i in range(5)}
        qrels = {q: {"t3": 1} for q in queries}  # training says the aspirin document answers "heart blood"
        c.build_resmem(queries, qrels, k=5, sigma=1.0, lambda_=1.0)
        info = c.resmem_info()
        assert info["n_queries"] == 5 and info["k"] == 5 and info["neighbours"] == "bm25"
        plain = c.search("heart blood", 6)
        corrected = c.search("heart blood", 6, resmem=True)
        rank = lambda hits: [h.id for h in hits].index("t3") if "t3" in [h.id for h in hits] else 99
        assert rank(corrected) < rank(plain)
        assert all(not math.isnan(h.stages.resmem_base) for h in corrected)


def test_closed_and_read_only_collections(tmp_path, tiny):
    path = tiny.dir
    tiny.close()
    with pytest.raises(quarry.FailedPreconditionError, match="closed"):
        tiny.search("heart")
    with quarry.Collection(path, read_only=True) as ro:
        assert ro.search("heart", 1)
        with pytest.raises(quarry.QuarryError):
            ro.ingest([{"id": "x", "text": "y"}])


def test_stats_check_compact(tiny):
    tiny.delete("t2")
    stats = tiny.stats()
    assert stats["n_docs"] == 5 and stats["lex_dead"] >= 1
    assert tiny.compact() >= 1
    assert tiny.stats()["lex_dead"] == 0
    report = tiny.check()
    assert report.ok and report.n_docs == 5 and report.problems == []


def test_callback_exception_is_raised_after_the_call(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": f"d{i}", "text": "x"} for i in range(5)])

    def fail(batch):
        raise RuntimeError("stop here")

    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        with pytest.raises(RuntimeError, match="stop here"):
            c.ingest_file(str(corpus), batch_docs=2, progress=fail)
        assert len(c) == 5  # the ingest itself finished: the callback cannot interrupt a write


def test_write_run_and_load_run_round_trip(tmp_path, tiny):
    run = {"q1": tiny.search("heart", 3), "q2": [("t3", 2.5), ("t4", 2.5), ("t1", 3.0)]}
    path = tmp_path / "run.trec"
    quarry.write_run(str(path), run, tag="test")
    lines = path.read_text().splitlines()
    assert lines[3:] == ["q2 Q0 t1 1 3.000000 test", "q2 Q0 t4 2 2.500000 test", "q2 Q0 t3 3 2.500000 test"]
    back = quarry.load_run(str(path))
    assert [d for d, _ in back["q1"]] == [h.id for h in run["q1"]]
    assert back["q2"] == [("t1", 3.0), ("t4", 2.5), ("t3", 2.5)]


def test_hits_is_a_sequence_with_whole_columns(tiny):
    hits = tiny.search("heart cholesterol blood", 6)
    each = list(hits)
    assert len(hits) == len(each) == 5 and bool(hits) and not tiny.search("zebra", 5)
    assert hits.ids == [h.id for h in each]
    assert hits.scores.dtype == np.float32 and hits.scores.tolist() == [h.score for h in each]
    assert hits.docs.dtype == np.uint32 and hits.docs.tolist() == [h.doc for h in each]
    assert hits[-1].id == each[-1].id and hits[0].id == each[0].id
    assert hits[1:4].ids == hits.ids[1:4] and hits[::-2].ids == hits.ids[::-2]
    with pytest.raises(IndexError):
        hits[5]
    first = hits[0]
    del hits, each  # a Hit keeps its query's hits alive
    assert first.id and first.score > 0
