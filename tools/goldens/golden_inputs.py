"""What the golden scripts share: the SciFact texts they feed the references, and file hashes."""
import hashlib
import json
import os


# Texts that exercise a tokenizer's corners: empty and blank strings, contractions, digit runs, accents,
# CJK, emoji, other scripts, control and zero-width characters, code, chat-template specials, long words.
EDGE_CASES = [
    "",
    " ",
    "   leading and trailing spaces   ",
    "Hello world",
    "don't I'll we've THEY'RE she's",
    "1 12 123 1234 12345 3.14159 1,000,000 2024-12-02",
    "Café naïve résumé Ångström coöperate",
    "東京大学の研究 and 北京 research",
    "emoji 🧬🔬 in text 👍🏽",
    "Привет, мир! Γειά σου κόσμε",
    "tab\tand\nnewline\r\nand\x07bell and zero\u200bwidth",
    "a  \n\n  b\n \n",
    "def f(x):\n    return x**2  # square\n",
    "C++ and C# and F#, O'Neill's 50°C",
    "<|im_start|>user\nIs aspirin an anticoagulant?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|> between <|im_end|>text",
    "a" * 101 + " " + "b" * 100,
]


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
