#!/usr/bin/env python3
"""Goldens for Quarry's real dual encoders, made by the reference implementation.

For each model directory given (as scripts/models.sh unpacks them), loads it with sentence-transformers
(PyTorch, CPU, float32) and writes tests/data/golden/<model>.json: for ~30 texts (SciFact test queries
and documents, as Quarry embeds them, and edge cases) the token ids SentenceTransformer.tokenize gives
(truncated at the model's max_seq_length) and the embedding SentenceTransformer.encode gives (its own
pooling and normalisation), rounded to 7 decimals. The library versions are recorded in the file.

Run by hand, never by CI:  tools/goldens/encoders.sh  (creates the pinned virtualenv and calls this).
"""
import argparse
import json
import os
import sys

import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

from golden_inputs import scifact_texts, sha256

EDGE_CASES = [
    "",
    "   ",
    "Statins LOWER cholesterol; do they?",
    "Café naïve résumé Ångström coöperate",
    "東京大学の研究 and 北京 research",
    "emoji 🧬🔬 in text 👍🏽",
    "tab\tand\nnewline\r\nand\x07bell and zero\u200bwidth",
    "[CLS] [SEP] [MASK] written inside text",
    "C++ and C# and F#, O'Neill's 50°C",
    "a" * 101 + " " + "b" * 100,
    # Longer than any max_seq_length: truncation keeps [SEP] last.
    " ".join(["hydroxychloroquine reduces mortality in covid patients"] * 120),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="model directories (sentence-transformers layout)")
    ap.add_argument("--dataset", required=True, help="the BEIR SciFact directory (../shared/datasets/scifact)")
    ap.add_argument("--out", required=True, help="output directory (tests/data/golden)")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--docs", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    texts = scifact_texts(args.dataset, args.queries, args.docs) + EDGE_CASES
    for model_dir in args.models:
        name = os.path.basename(os.path.normpath(model_dir))
        model = SentenceTransformer(model_dir, device="cpu")
        model.eval()
        cases = []
        for text in texts:
            features = model.tokenize([text])
            ids = features["input_ids"][0].tolist()
            emb = model.encode([text], batch_size=1, convert_to_numpy=True)[0]
            cases.append({"text": text, "ids": ids, "embedding": [round(float(v), 7) for v in emb]})
        golden = {
            "made_by": {
                "sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "torch": torch.__version__,
                "python": sys.version.split()[0],
            },
            "model": name,
            "model_safetensors_sha256": sha256(os.path.join(model_dir, "model.safetensors")),
            "max_seq_length": model.max_seq_length,
            "dim": int(model.get_sentence_embedding_dimension()),
            "how": "SentenceTransformer(dir, device='cpu').tokenize([text])['input_ids'][0] and .encode([text], batch_size=1); float32",
            "cases": cases,
        }
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: {len(cases)} texts, dim {golden['dim']}, max_seq_length {golden['max_seq_length']}")


if __name__ == "__main__":
    main()
