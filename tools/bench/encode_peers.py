#!/usr/bin/env python3
"""Peers of bench_encode (scripts/bench-encode.sh): documents/s of the same model on the same texts with
sentence-transformers on PyTorch (CPU, float32) and with ONNX Runtime (the model exported once to ONNX by
torch.onnx, then mean/CLS pooling and normalisation as the model's modules say, in numpy). Prints one JSON
line per (system, max_length, threads), the median of the passes, in bench_encode's format."""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def load_texts(corpus, n):
    texts = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            texts.append(d["title"] + " " + d["text"] if d.get("title") else d["text"])
            if len(texts) == n:
                break
    return texts


def timed(fn, passes):
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lengths", default="256,512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--work", required=True, help="where the ONNX export is written")
    args = ap.parse_args()
    texts = load_texts(args.corpus, args.docs)
    lengths = [int(x) for x in args.lengths.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    st = SentenceTransformer(args.model, device="cpu")
    st.eval()
    pooling = st[1].get_config_dict()["pooling_mode"] if len(st) > 1 else "cls"
    if pooling not in ("mean", "cls"):
        sys.exit(f"encode_peers: pooling {pooling!r} is not reproduced here")
    normalize = any(type(m).__name__ == "Normalize" for m in st)
    transformer = st[0].auto_model
    tokenizer = st.tokenizer

    import onnxruntime as ort
    onnx_path = os.path.join(args.work, os.path.basename(os.path.normpath(args.model)) + ".onnx")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in tokenizer.model_input_names else [])
    if not os.path.exists(onnx_path):
        os.makedirs(args.work, exist_ok=True)
        sample = tokenizer(["hello world", "a longer second text"], padding=True, return_tensors="pt")
        inputs = tuple(sample[n] for n in names)

        class Wrapped(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, *xs):
                return self.m(**dict(zip(names, xs))).last_hidden_state

        dims = {n: {0: "batch", 1: "seq"} for n in names}
        torch.onnx.export(Wrapped(transformer).eval(), inputs, onnx_path, input_names=names, output_names=["hidden"],
                          dynamic_axes={**dims, "hidden": {0: "batch", 1: "seq"}}, opset_version=17, dynamo=False)

    for length in lengths:
        st.max_seq_length = length
        for t in threads:
            torch.set_num_threads(t)
            s = timed(lambda: st.encode(texts, batch_size=args.batch, convert_to_numpy=True), args.passes)
            print(json.dumps({"system": "sentence-transformers (torch %s)" % torch.__version__, "docs": len(texts),
                              "max_length": length, "batch": args.batch, "threads": t, "seconds": s,
                              "docs_per_s": len(texts) / s}), flush=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = t
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

            def run_onnx():
                for b in range(0, len(texts), args.batch):
                    enc = tokenizer(texts[b:b + args.batch], padding=True, truncation=True, max_length=length,
                                    return_tensors="np")
                    hidden = session.run(None, {n: enc[n].astype(np.int64) for n in names})[0]
                    mask = enc["attention_mask"][..., None].astype(np.float32)
                    emb = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
                    if normalize:
                        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)

            s = timed(run_onnx, args.passes)
            print(json.dumps({"system": "onnxruntime %s" % ort.__version__, "docs": len(texts), "max_length": length,
                              "batch": args.batch, "threads": t, "seconds": s, "docs_per_s": len(texts) / s}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
