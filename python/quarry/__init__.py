"""Quarry: an embeddable retrieval and in-context ranking engine (C++), from Python.

    import quarry
    c = quarry.Collection("scifact", create=True)
    c.ingest_file("corpus.jsonl")                      # BEIR corpus; or c.ingest([{"id": ..., "text": ...}])
    hits = c.search("statins and heart disease", k=10)
    runs = c.batch_search(texts, k=1000, threads=2)    # the GIL is released; oneTBB threads
    ev = quarry.evaluate(quarry.load_qrels("qrels/test.tsv"), {qid: hits for ...}, "ndcg_cut.10")

Everything here is a thin shell over the C++ library (include/quarry); errors are QuarryError
subclasses carrying the library's Status `code` and `message`. See the README's Python section.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Union

from . import _quarry
from ._quarry import (
    AlreadyExistsError,
    CheckReport,
    CorruptionError,
    DenseTuning,
    Document,
    Evaluation,
    FailedPreconditionError,
    Hit,
    Hits,
    HitStages,
    IngestBatch,
    IngestReport,
    InternalError,
    InvalidArgumentError,
    IOError,
    NotFoundError,
    QuarryError,
    load_qrels,
    load_queries,
    load_run,
)

__all__ = [
    "AlreadyExistsError", "CheckReport", "Collection", "CorruptionError", "DenseTuning", "Document",
    "Evaluation", "FailedPreconditionError", "Hit", "Hits", "HitStages", "IOError", "IngestBatch", "IngestReport",
    "InternalError", "InvalidArgumentError", "NotFoundError", "QuarryError", "evaluate", "load_qrels",
    "load_queries", "load_run", "write_run",
]
__version__ = _quarry.__version__  # CMakeLists.txt's project() version, as the C++ library and the CLI say

# A ranking as Python code holds one: hits from a search, (docid, score) pairs, or pytrec_eval's {docid: score}.
Ranking = Union[Hits, Iterable[Hit], Iterable[tuple[str, float]], Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _pairs(ranking: Ranking) -> list[tuple[str, float]]:
    if isinstance(ranking, Hits):  # whole, without a Python object per hit
        return list(zip(ranking.ids, ranking.scores.tolist()))
    if isinstance(ranking, Mapping):
        return [(str(doc), float(score)) for doc, score in ranking.items()]
    out = []
    for entry in ranking:
        if isinstance(entry, Hit):
            out.append((entry.id, float(entry.score)))
        else:
            doc, score = entry
            out.append((str(doc), float(score)))
    return out


def _run(run: Mapping[str, Ranking] | str) -> dict[str, list[tuple[str, float]]]:
    if isinstance(run, str):
        return load_run(run)
    return {str(qid): _pairs(ranking) for qid, ranking in run.items()}


def evaluate(qrels: Qrels | str, run: Mapping[str, Ranking] | str, metrics: str = "ndcg@10",
             ignore_self: bool = False, relevance_level: int = 1) -> Evaluation:
    """Evaluates `run` against `qrels` with trec_eval's conventions (trec_eval -c: every judged query counts).

    qrels: {qid: {docid: grade}} or a qrels file. run: {qid: hits | [(docid, score)] | {docid: score}} or a
    TREC run file; ties are broken by docid descending, as trec_eval does. metrics: comma-separated, in
    Quarry's ("ndcg@10,recall@100,mrr@10,p@5,map") or trec_eval's ("ndcg_cut.10,recall.100,P.5,recip_rank")
    spelling. ignore_self drops hits whose docid equals the qid (BEIR's ignore_identical_ids).
    relevance_level: the lowest grade that is relevant for recall, P, MAP and MRR (trec_eval -l,
    pytrec_eval's relevance_level; TREC DL reports recall and MAP at 2); nDCG's gains are the grades.
    """
    if isinstance(qrels, str):
        qrels = load_qrels(qrels)
    judged = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    return _quarry._evaluate(judged, _run(run), metrics, ignore_self, relevance_level)


def write_run(path: str, run: Mapping[str, Ranking], tag: str = "quarry", sort: bool = True) -> None:
    """Writes a TREC run ("qid Q0 docid rank score tag", scores with 6 decimals, as Pyserini writes them).

    sort: order each query's entries as trec_eval ranks them (score descending, docid descending on ties);
    False keeps the order given.
    """
    _quarry._write_run(path, _run(run), tag, sort)


def _document(doc: Document | Mapping[str, Any], id_field: str, line: int) -> tuple[str, str, str, str]:
    if isinstance(doc, Document):
        return (doc.id, doc.title, doc.text, doc.metadata)
    if not isinstance(doc, Mapping):
        raise InvalidArgumentError(f"document {line}: expected a dict or quarry.Document, got {type(doc).__name__}")
    doc_id = doc.get(id_field, doc.get("_id"))
    if doc_id is None:
        raise InvalidArgumentError(f"document {line}: no '{id_field}' (or '_id') field")
    metadata = doc.get("metadata")
    if metadata is None or metadata == "":
        metadata_text = ""
    elif isinstance(metadata, str):
        metadata_text = metadata
    else:
        metadata_text = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    return (str(doc_id), str(doc.get("title") or ""), str(doc.get("text") or ""), metadata_text)


class Collection(_quarry._Collection):
    """A Quarry collection directory (a RocksDB store, its lexical and dense indexes, ResMem and rerank caches).

    Collection(path, create=False, read_only=False). Every method may be called from many threads;
    searches release the GIL. A read-only collection sees the directory as it was when opened, and any
    number of processes may hold one while a single writer works. close() releases it (also on `with`).
    """

    def __init__(self, path: str, create: bool = False, read_only: bool = False) -> None:
        super().__init__(str(path), create, read_only)

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.stats()["n_docs"])

    def __repr__(self) -> str:
        return f"quarry.Collection({self.dir!r})"

    def ingest_file(self, path: str, format: str = "beir", *, id_field: str = "id", title_field: str = "title",
                    text_field: str = "text", metadata_field: str = "metadata", max_doc_bytes: int = 1 << 20,
                    batch_docs: int = 1000, skip_invalid: bool = False, report_path: str = "", sync: bool = True,
                    progress: Callable[[IngestBatch], None] | None = None) -> IngestReport:
        """Streams a corpus file into the collection in atomic batches of `batch_docs`.

        format: "beir" (corpus.jsonl), "msmarco" (pid<TAB>text) or "jsonl" (the *_field names). A bad line
        raises InvalidArgumentError naming file and line (earlier batches stay committed), unless
        skip_invalid, which counts it (and lists it in report_path). progress(batch) after each commit.
        """
        return super().ingest_file(str(path), format, id_field, title_field, text_field, metadata_field,
                                   max_doc_bytes, batch_docs, skip_invalid, report_path, sync, progress)

    def ingest(self, docs: Iterable[Document | Mapping[str, Any]], batch_docs: int = 1000,
               id_field: str = "id") -> int:
        """Adds or replaces documents from any iterable of dicts ({"id" or "_id", "title", "text", "metadata"})
        or quarry.Document, in atomic batches of `batch_docs`. Returns the number written. On a bad document
        it raises, naming its position; earlier batches stay committed."""
        batch: list[tuple[str, str, str, str]] = []
        n = 0
        for line, doc in enumerate(docs, start=1):
            batch.append(_document(doc, id_field, line))
            if len(batch) >= batch_docs:
                self.upsert(batch)
                n += len(batch)
                batch = []
        if batch:
            self.upsert(batch)
            n += len(batch)
        return n

    def build_dense_index(self, factory: str = "Flat", *, inner_product: bool = True, encoder: str = "",
                          query_prefix: str | None = None, document_prefix: str | None = None, pooling: str = "",
                          normalize: bool | None = None, max_length: int = 0, nprobe: int = 0, ef_search: int = 0,
                          train_sample: int = 100000, max_unindexed: int = 0,
                          progress: Callable[[int, int], None] | None = None) -> int:
        """Configures and builds the dense (FAISS) index; with `encoder` (a checkpoint directory) every
        document is embedded first, calling progress(done, total) after each batch; without, the vectors
        given to put_vectors are indexed. Unset prefixes, pooling, normalize and max_length follow the
        encoder's sentence-transformers configuration. Returns the number of vectors indexed."""
        return super().build_dense_index(factory, inner_product, encoder, query_prefix, document_prefix, pooling,
                                         normalize, max_length, nprobe, ef_search, train_sample, max_unindexed,
                                         progress)

    @staticmethod
    def _training(queries: Mapping[str, str] | Iterable[tuple[str, str]], qrels: Qrels):
        items = queries.items() if isinstance(queries, Mapping) else queries
        return [(str(q), str(text), {str(d): int(g) for d, g in qrels[q].items()})
                for q, text in items if q in qrels]

    def build_resmem(self, queries: Mapping[str, str] | Iterable[tuple[str, str]], qrels: Qrels, *, k: int = 10,
                     sigma: float = 1.0, temperature: float = 1.0, lambda_: float = 1.0, depth: int = 100,
                     neighbours: str = "bm25") -> None:
        """Builds and stores a ResMem memory from training queries ({qid: text}) and their judgements
        (queries without judgements are left out); search(..., resmem=True) then corrects with it."""
        self._build_resmem(self._training(queries, qrels), k, sigma, temperature, lambda_, depth, neighbours)

    def tune_resmem(self, queries: Mapping[str, str] | Iterable[tuple[str, str]], qrels: Qrels, *,
                    validation_fraction: float = 0.2, seed: int = 42, neighbours: str = "bm25") -> dict:
        """Grid-searches ResMem's hyperparameters on a seeded validation part of the training queries
        (nDCG@10); stores nothing. Returns {"rows", "best", "best_ndcg10", "baseline_ndcg10", ...}."""
        return self._tune_resmem(self._training(queries, qrels), validation_fraction, seed, neighbours)
