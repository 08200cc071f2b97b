"""Concurrency through Python (the GIL is released in searches and writes) and memory over many calls."""

import threading

import quarry
from conftest import TINY_DOCS


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_threads_search_while_another_ingests(tmp_path):
    with quarry.Collection(str(tmp_path / "c"), create=True) as c:
        c.ingest(TINY_DOCS)
        stop = threading.Event()
        errors, counts = [], []

        def searcher():
            n = 0
            try:
                while not stop.is_set():
                    hits = c.search("heart cholesterol", 5)
                    # a search sees whole batches: the tiny documents are always there, each id once
                    ids = [h.id for h in hits]
                    assert len(ids) == len(set(ids)) and "t0" in [h.id for h in c.search("statins", 10)]
                    n += 1
            except Exception as e:  # reported below, with the thread's count
                errors.append(e)
            counts.append(n)

        threads = [threading.Thread(target=searcher) for _ in range(3)]
        for t in threads:
            t.start()
        written = 0
        for b in range(20):
            written += c.ingest({"id": f"w{b}-{i}", "text": f"heart study {b} cholesterol {i}"} for i in range(50))
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(n > 0 for n in counts), counts
        assert written == 1000 and len(c) == 1000 + len(TINY_DOCS)
        # every written document, and the five tiny ones with "heart" or "cholesterol"
        assert len(c.search("heart study cholesterol", 2000, hydrate=False)) == 1000 + 5
        assert c.check().ok


def test_no_leak_across_ten_thousand_searches(scifact_dir, scifact_test_queries):
    path, _ = scifact_dir
    queries, _ = scifact_test_queries
    texts = [t for _, t in queries]
    with quarry.Collection(str(path), read_only=True) as c:
        for i in range(1000):  # warm up: index loaded, allocator pools at their working size
            c.search(texts[i % len(texts)], 10)
        before = rss_kib()
        for i in range(10000):
            hits = c.search(texts[i % len(texts)], 10)
            assert len(hits) == 10
        grown = rss_kib() - before
    # 10,000 hydrated searches of 10 hits move ~100 MB of titles and texts through Python; a leak of even
    # one hit per search would keep ~15 MB
    assert grown < 8 * 1024, f"RSS grew {grown} KiB over 10,000 searches"
