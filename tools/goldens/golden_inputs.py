"""What the golden scripts share: the SciFact texts they feed the references, and file hashes."""
import hashlib
import json
import os


def scifact_texts(dataset, n_queries, n_docs, max_chars=None):
    """The first n_queries queries and n_docs documents of a BEIR dataset, each document as Quarry
    embeds and ranks it: title + " " + text (engine/dense.cc DocumentText), cut at max_chars."""
    texts = []
    with open(os.path.join(dataset, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) == n_queries:
                break
    with open(os.path.join(dataset, "corpus.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == n_docs:
                break
            d = json.loads(line)
            text = d["title"] + " " + d["text"] if d.get("title") else d["text"]
            texts.append(text[:max_chars] if max_chars else text)
    return texts


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
