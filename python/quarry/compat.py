"""Pyserini-shaped adapters: scripts written for Pyserini change one import line.

    from quarry.compat import LuceneSearcher      # was: from pyserini.search.lucene import LuceneSearcher
    searcher = LuceneSearcher("scifact")          # a Quarry collection directory
    hits = searcher.search("statins", k=10)       # hits[i].docid, hits[i].score, .contents, .raw
    results = searcher.batch_search(queries, qids, k=1000, threads=2)   # {qid: hits}

Quarry's BM25 is Lucene 8's (EnglishAnalyzer, k1 0.9, b 0.4: Pyserini's defaults for BEIR), so the runs
equal Pyserini's on a collection ingested from the same corpus.
"""

from __future__ import annotations

import json

from . import Collection, Hit

__all__ = ["LuceneSearcher", "ScoredDoc", "StoredDoc"]


def _contents(title: str, text: str) -> str:
    return f"{title} {text}" if title else text


def _raw(doc_id: str, title: str, text: str, metadata: str) -> str:
    fields = {"_id": doc_id, "title": title, "text": text}
    if metadata:
        fields["metadata"] = json.loads(metadata)
    return json.dumps(fields, ensure_ascii=False)


class ScoredDoc:
    """A hit as Pyserini's JScoredDoc: docid, score, lucene_docid, contents, raw."""

    __slots__ = ("docid", "score", "lucene_docid", "contents", "raw")

    def __init__(self, hit: Hit):
        self.docid = hit.id
        self.score = hit.score
        self.lucene_docid = hit.doc
        self.contents = _contents(hit.title, hit.text)
        self.raw = _raw(hit.id, hit.title, hit.text, "")

    def __repr__(self) -> str:
        return f"ScoredDoc(docid={self.docid!r}, score={self.score:.4f})"


class StoredDoc:
    """A stored document as Pyserini's Document: docid(), contents(), raw()."""

    def __init__(self, doc):
        self._doc = doc

    def docid(self) -> str:
        return self._doc.id

    def contents(self) -> str:
        return _contents(self._doc.title, self._doc.text)

    def raw(self) -> str:
        return _raw(self._doc.id, self._doc.title, self._doc.text, self._doc.metadata)


class LuceneSearcher:
    """Pyserini's LuceneSearcher over a Quarry collection directory (opened read-only)."""

    def __init__(self, index_dir: str):
        self._collection = Collection(index_dir, read_only=True)

    @property
    def num_docs(self) -> int:
        return len(self._collection)

    def set_bm25(self, k1: float = 0.9, b: float = 0.4) -> None:
        """Quarry's BM25 parameters are Lucene's k1 0.9, b 0.4 (Pyserini's BEIR defaults); others are refused
        rather than silently ignored."""
        if (k1, b) != (0.9, 0.4):
            raise NotImplementedError(f"quarry.compat: BM25 is fixed at k1=0.9, b=0.4 (asked k1={k1}, b={b})")

    def search(self, q: str, k: int = 10) -> list[ScoredDoc]:
        return [ScoredDoc(h) for h in self._collection.search(q, k)]

    def batch_search(self, queries: list[str], qids: list[str], k: int = 10, threads: int = 1) -> dict[str, list[ScoredDoc]]:
        if len(queries) != len(qids):
            raise ValueError(f"batch_search: {len(queries)} queries but {len(qids)} qids")
        results = self._collection.batch_search(list(queries), k, threads=threads)
        return {qid: [ScoredDoc(h) for h in hits] for qid, hits in zip(qids, results)}

    def doc(self, docid: str) -> StoredDoc | None:
        found = self._collection.get(str(docid))
        return StoredDoc(found) if found is not None else None

    def close(self) -> None:
        self._collection.close()
