"""BM25 through Python on a BEIR folder: Quarry's package, Pyserini's LuceneSearcher and bm25s, one process.

Usage: python_peers.py BEIR_DIR WORK_DIR [--passes N] [--skip quarry,pyserini,bm25s]
Prints one JSON object per line: {"system", "k", "how", "threads", "qps"} for query throughput (median of
N passes over the split's test queries, no text fetched), {"system", "index_s"} and {"system", "ndcg10",
"recall100"} from each system's own k=1000 run, evaluated by quarry.evaluate (equal to trec_eval). Run
by scripts/bench-python.sh, which sets PYTHONPATH to the build tree's package and prints the ratios.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import quarry

THREADS_ALL = os.cpu_count() or 1


def emit(**fields):
    print(json.dumps(fields), flush=True)


def median_seconds(run, passes):
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def each(search, texts):
    """One query after another, each result dropped before the next, as bench_bm25's 1-thread loop does."""
    for t in texts:
        search(t)


def measure(system, k, how, threads, n_queries, run, passes):
    emit(system=system, k=k, how=how, threads=threads, qps=round(n_queries / median_seconds(run, passes), 1))


def quality(system, qrels, run):
    ev = quarry.evaluate(qrels, run, "ndcg_cut.10,recall.100")
    emit(system=system, ndcg10=round(ev.mean["nDCG@10"], 4), recall100=round(ev.mean["Recall@100"], 4))


def bench_quarry(beir, work, qids, texts, qrels, passes):
    t0 = time.perf_counter()
    c = quarry.Collection(str(work / "quarry"), create=True)
    c.ingest_file(str(beir / "corpus.jsonl"), batch_docs=5000, sync=False)
    c.preload()
    emit(system="quarry", index_s=round(time.perf_counter() - t0, 3))
    for k in (10, 1000):
        # the same loop in C++ in this process: what the binding itself costs, free of cross-process drift
        measure("quarry-c++-in-process", k, "loop", 1, len(texts), lambda: c._search_loop(texts, k), passes)
        measure("quarry", k, "loop", 1, len(texts), lambda: each(lambda t: c.search(t, k, hydrate=False), texts), passes)
        measure("quarry", k, "batch", 1, len(texts), lambda: c.batch_search(texts, k, threads=1, hydrate=False), passes)
        measure("quarry", k, "batch", THREADS_ALL, len(texts),
                lambda: c.batch_search(texts, k, threads=THREADS_ALL, hydrate=False), passes)
    results = c.batch_search(texts, 1000, hydrate=False)
    quality("quarry", qrels, {q: hits for q, hits in zip(qids, results)})
    c.close()


def bench_pyserini(beir, work, qids, texts, qrels, passes):
    # Pyserini's BEIR "flat" index: title and text in one field, Lucene's English analyzer, BM25 k1 0.9 b 0.4.
    import subprocess

    docs = work / "pyserini-docs"
    docs.mkdir()
    with open(beir / "corpus.jsonl") as src, open(docs / "corpus.jsonl", "w") as out:
        for line in src:
            d = json.loads(line)
            out.write(json.dumps({"id": d["_id"], "contents": f"{d.get('title', '')} {d['text']}"}) + "\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyserini.index.lucene", "--collection", "JsonCollection", "--input",
                    str(docs), "--index", str(work / "pyserini-index"), "--generator",
                    "DefaultLuceneDocumentGenerator", "--threads", str(THREADS_ALL), "--storeRaw"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emit(system="pyserini", index_s=round(time.perf_counter() - t0, 3))
    from pyserini.search.lucene import LuceneSearcher

    s = LuceneSearcher(str(work / "pyserini-index"))
    s.set_bm25(0.9, 0.4)
    for k in (10, 1000):
        measure("pyserini", k, "loop", 1, len(texts), lambda: each(lambda t: s.search(t, k), texts), passes)
        measure("pyserini", k, "batch", 1, len(texts), lambda: s.batch_search(texts, qids, k, 1), passes)
        measure("pyserini", k, "batch", THREADS_ALL, len(texts), lambda: s.batch_search(texts, qids, k, THREADS_ALL),
                passes)
    results = s.batch_search(texts, qids, 1000, THREADS_ALL)
    quality("pyserini", qrels, {q: [(h.docid, h.score) for h in hits] for q, hits in results.items()})


def bench_bm25s(beir, work, qids, texts, qrels, passes):
    # bm25s with its Lucene variant at Lucene's k1 0.9, b 0.4, English stopwords and the Snowball stemmer.
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids, corpus = [], []
    with open(beir / "corpus.jsonl") as src:
        for line in src:
            d = json.loads(line)
            ids.append(d["_id"])
            corpus.append(f"{d.get('title', '')} {d['text']}")
    t0 = time.perf_counter()
    retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    emit(system="bm25s", index_s=round(time.perf_counter() - t0, 3))

    def batch(k, threads):
        # query tokenisation is part of every query's cost, as it is in the other systems
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        return retriever.retrieve(tokens, k=k, n_threads=threads, show_progress=False)

    for k in (10, 1000):
        measure("bm25s", k, "batch", 1, len(texts), lambda: batch(k, 1), passes)
        measure("bm25s", k, "batch", THREADS_ALL, len(texts), lambda: batch(k, THREADS_ALL), passes)
    docs, scores = batch(1000, THREADS_ALL)
    quality("bm25s", qrels, {q: [(ids[d], float(s)) for d, s in zip(docs[i], scores[i])] for i, q in enumerate(qids)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("beir", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated systems to leave out: quarry, pyserini, bm25s")
    args = parser.parse_args()
    qrels = quarry.load_qrels(str(args.beir / "qrels" / "test.tsv"))
    queries = [(q, t) for q, t in quarry.load_queries(str(args.beir / "queries.jsonl")) if q in qrels]
    qids, texts = [q for q, _ in queries], [t for _, t in queries]
    skip = set(filter(None, args.skip.split(",")))
    if "quarry" not in skip:
        bench_quarry(args.beir, args.work, qids, texts, qrels, args.passes)
    if "bm25s" not in skip:
        bench_bm25s(args.beir, args.work, qids, texts, qrels, args.passes)
    if "pyserini" not in skip:
        bench_pyserini(args.beir, args.work, qids, texts, qrels, args.passes)


if __name__ == "__main__":
    main()
