#!/usr/bin/env python3
"""Goldens for Quarry's GGUF decoders, made by llama.cpp (through llama-cpp-python) and gguf-py.

For each GGUF file given (as scripts/models.sh unpacks them) writes tests/data/golden/decoder_<model>.json:
  - ids: for ~30 texts (SciFact test queries and documents, edge cases, chat-template specials) the ids
    llama.cpp's tokenizer gives (llama_tokenize with add_special=False, parse_special=True);
  - dequant: for one tensor of every ggml type in the file, gguf-py's dequantisation (the Python port
    of ggml-quants.c) of its first rows: the first 32 values of each and the row's sum and sum of squares;
  - logits: for a few prompts, llama.cpp's last-position logits (F32 KV cache, no flash attention,
    one thread): the top 20 ids and values, and the value at a fixed set of ids;
  - llama_cpp_f32: llama.cpp's logits at the same ids for an F32 copy of the file (every tensor
    dequantised by gguf-py): llama.cpp without its activation rounding;
  - float_reference: the same logits from a plain float64 forward pass of gguf-py's dequantised weights,
    written here in numpy from the GGUF metadata with llama.cpp's conventions (interleaved RoPE pairs for
    arch llama, whose query/key rows GGUF stores permuted; halves for qwen2). llama.cpp itself quantises
    activations before each quantised matrix product, so this is the exact value of the dequantised
    model, and llama.cpp's distance from it measures that rounding;
  - greedy: llama.cpp's greedy continuation of 32 tokens from each prompt, with the margin between the
    best and second-best logit at every step (a step whose margin is below the logits tolerance may
    legitimately go the other way in an exact float32 implementation), and the float64 reference's own
    greedy continuation with its margins.
The library versions and the file's sha256 are recorded.

Run by hand, never by CI:  tools/goldens/decoders.sh  (creates the pinned virtualenv and calls this).
"""
import argparse
import importlib.metadata
import json
import os
import tempfile

import llama_cpp
import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, GGMLQuantizationType
from gguf.quants import dequantize

from golden_inputs import EDGE_CASES, scifact_texts, sha256


PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhich of these documents best answers the query? Query: 0-dimensional biomaterials "
    "lack inductive properties.<|im_end|>\n<|im_start|>assistant\n",
]
# Gemma's chat template in place of ChatML.
PROMPTS_GEMMA3 = [
    "The capital of France is",
    "<start_of_turn>user\nWhich of these documents best answers the query? Query: 0-dimensional biomaterials "
    "lack inductive properties.<end_of_turn>\n<start_of_turn>model\n",
]


def dequant_samples(path, rows=4):
    """One tensor per ggml type: gguf-py's dequantisation of its first `rows` rows."""
    reader = GGUFReader(path)
    seen = {}
    for t in reader.tensors:
        kind = GGMLQuantizationType(t.tensor_type).name
        if kind in seen:
            continue
        values = dequantize(t.data, t.tensor_type)  # numpy shape: outermost first
        values = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)
        sample = []
        for r in range(min(rows, values.shape[0])):
            row = values[r].astype(np.float64)
            sample.append({"row": r, "first": [float(v) for v in values[r][:32]],
                           "sum": float(row.sum()), "sumsq": float((row * row).sum())})
        seen[kind] = {"tensor": t.name, "type": kind, "shape": [int(d) for d in reversed(t.shape)],
                      "rows": sample}
    return list(seen.values())


def write_f32_copy(src, dst):
    """The same model with every tensor dequantised to F32 (gguf-py), metadata unchanged: llama.cpp runs it
    without rounding activations, so its distance from the float64 reference checks the reference's
    reading of llama.cpp's graph, apart from llama.cpp's quantisation."""
    r = GGUFReader(src)
    w = GGUFWriter(dst, r.fields["general.architecture"].contents())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        if f.types[0] == GGUFValueType.ARRAY:
            w.add_key_value(name, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(name, f.contents(), f.types[0])
    for t in r.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))
        w.add_tensor(t.name, dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def reference_model(path):
    """A function from token ids to the last position's logits: a float64 forward pass in numpy."""
    reader = GGUFReader(path)
    arch = field(reader, "general.architecture")
    a = arch + "."
    n_layers = field(reader, a + "block_count")
    n_heads = field(reader, a + "attention.head_count")
    n_kv = field(reader, a + "attention.head_count_kv", n_heads)
    eps = field(reader, a + "attention.layer_norm_rms_epsilon")
    base = field(reader, a + "rope.freq_base", 10000.0)
    weights = {}
    for t in reader.tensors:
        weights[t.name] = dequantize(t.data, t.tensor_type).reshape(tuple(int(d) for d in reversed(t.shape)))
    hidden = weights["token_embd.weight"].shape[1]
    d = field(reader, a + "attention.key_length", hidden // n_heads)
    gemma3 = arch == "gemma3"
    # Gemma 3 as llama.cpp builds it (llm_build_gemma3_iswa): embeddings times sqrt(hidden); RMSNorm of
    # each query and key head; every 6th layer global (the file's RoPE base), the others local (base
    # 10,000, keys less than `window` positions back); norms of the attention's and the MLP's outputs
    # before the residual adds; a GELU (tanh) gate. GGUF's Gemma norm weights already hold 1 + w.
    window = field(reader, a + "attention.sliding_window", 0) if gemma3 else 0
    local = (lambda l: l % 6 < 5) if gemma3 else (lambda l: False)
    freqs = {False: base ** (-np.arange(0, d, 2, dtype=np.float64) / d),
             True: 10000.0 ** (-np.arange(0, d, 2, dtype=np.float64) / d)}

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, pos, inv_freq):  # x [n, heads, d]
        ang = pos[:, None] * inv_freq[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if arch == "llama":  # ggml's "normal" rope: adjacent pairs
            x0, x1 = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
            return out
        x0, x1 = x[..., : d // 2], x[..., d // 2:]  # NeoX: halves
        return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1)

    def linear(x, name):
        y = x @ weights[name + ".weight"].astype(np.float64).T
        if name + ".bias" in weights:
            y = y + weights[name + ".bias"]
        return y

    head = weights.get("output.weight", weights["token_embd.weight"]).astype(np.float64)

    def last_logits(ids):
        n = len(ids)
        pos = np.arange(n, dtype=np.float64)
        x = weights["token_embd.weight"][ids].astype(np.float64)
        if gemma3:
            x = x * np.sqrt(hidden)
        causal = np.triu(np.full((n, n), -np.inf), 1)
        windowed = causal + np.tril(np.full((n, n), -np.inf), -window) if window else causal
        for l in range(n_layers):
            p = f"blk.{l}."
            h = rms(x, weights[p + "attn_norm.weight"])
            q = linear(h, p + "attn_q").reshape(n, n_heads, d)
            k = linear(h, p + "attn_k").reshape(n, n_kv, d)
            if gemma3:
                q, k = rms(q, weights[p + "attn_q_norm.weight"]), rms(k, weights[p + "attn_k_norm.weight"])
            q, k = rope(q, pos, freqs[local(l)]), rope(k, pos, freqs[local(l)])
            v = linear(h, p + "attn_v").reshape(n, n_kv, d)
            k, v = np.repeat(k, n_heads // n_kv, 1), np.repeat(v, n_heads // n_kv, 1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(d) + (windowed if local(l) else causal)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            attn = linear(np.einsum("hqk,khd->qhd", s, v).reshape(n, n_heads * d), p + "attn_output")
            x = x + (rms(attn, weights[p + "post_attention_norm.weight"]) if gemma3 else attn)
            h = rms(x, weights[p + "ffn_norm.weight"])
            g = linear(h, p + "ffn_gate")
            if gemma3:
                act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
                x = x + rms(linear(act * linear(h, p + "ffn_up"), p + "ffn_down"), weights[p + "post_ffw_norm.weight"])
            else:
                x = x + linear(g / (1 + np.exp(-g)) * linear(h, p + "ffn_up"), p + "ffn_down")
        return rms(x[-1:], weights["output_norm.weight"])[0] @ head.T

    return last_logits


def greedy(next_logits, steps):
    """Greedy continuation: the best id at each step and its margin over the second best."""
    ids, margins = [], []
    for _ in range(steps):
        last = next_logits(ids)
        order = np.argsort(-last, kind="stable")[:2]
        ids.append(int(order[0]))
        margins.append(float(last[order[0]] - last[order[1]]))
    return ids, margins


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="GGUF files (<model dir>/model.gguf)")
    ap.add_argument("--dataset", required=True, help="a BEIR dataset directory (SciFact)")
    ap.add_argument("--out", required=True, help="directory for decoder_<model>.json")
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    texts = scifact_texts(args.dataset, 8, 6, max_chars=1500) + EDGE_CASES
    for path in args.models:
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
        vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        ids = [{"text": t, "ids": vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True)} for t in texts]
        del vocab
        # F32 KV cache and no flash attention: the closest llama.cpp comes to plain float32 attention.
        llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_batch=1024, n_threads=2, type_k=0, type_v=0,
                              flash_attn=False, logits_all=True, verbose=False)
        n_vocab = llm.n_vocab()
        fixed = sorted(set(np.linspace(0, n_vocab - 1, 16).astype(int).tolist()))
        logits, greedy_runs = [], []
        arch = field(GGUFReader(path), "general.architecture")
        prompts = list(PROMPTS)
        if arch == "gemma3":
            # A prompt longer than the local layers' 512-token window, so that the goldens cover it.
            long_prompt = " ".join(scifact_texts(args.dataset, 1, 6)[1:])[:3000]  # six documents
            prompts = PROMPTS_GEMMA3 + [long_prompt]
        for prompt in prompts:
            prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            llm.reset()
            llm.eval(prompt_ids)
            last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            top = np.argsort(-last, kind="stable")[:20]
            logits.append({"prompt": prompt, "ids": prompt_ids,
                           "top": [[int(i), float(last[i])] for i in top],
                           "fixed": [[int(i), float(last[i])] for i in fixed]})
            steps, margins = [], []
            for _ in range(args.steps):
                order = np.argsort(-last, kind="stable")[:2]
                steps.append(int(order[0]))
                margins.append(float(last[order[0]] - last[order[1]]))
                llm.eval([int(order[0])])
                last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            greedy_runs.append({"prompt": prompt, "continuation": steps, "margins": margins})
        del llm
        with tempfile.TemporaryDirectory() as tmp:
            f32 = os.path.join(tmp, "f32.gguf")
            write_f32_copy(path, f32)
            llm = llama_cpp.Llama(model_path=f32, n_ctx=1024, n_batch=1024, n_threads=2, type_k=0, type_v=0,
                                  flash_attn=False, logits_all=True, verbose=False)
            for entry in logits:
                llm.reset()
                llm.eval(entry["ids"])
                last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
                entry["llama_cpp_f32"] = {part: [[i, float(last[i])] for i, _ in entry[part]] for part in ("top", "fixed")}
            del llm
        ref_model = reference_model(path)
        for entry, g in zip(logits, greedy_runs):
            ref = ref_model(entry["ids"])
            entry["float_reference"] = {part: [[i, float(ref[i])] for i, _ in entry[part]] for part in ("top", "fixed")}
            steps, margins = greedy(lambda cont: ref_model(entry["ids"] + cont), args.steps)
            g["float_reference"] = {"continuation": steps, "margins": margins}
        golden = {
            "model": name,
            "file_sha256": sha256(path),
            "reference": {"llama_cpp_python": llama_cpp.__version__, "gguf": importlib.metadata.version("gguf"),
                          "numpy": np.__version__,
                          "llama_cpp_settings": "n_ctx=1024 n_batch=1024 n_threads=2 type_k=type_v=F32 flash_attn=off"},
            "tokenize": "llama_tokenize(add_special=False, parse_special=True)",
            "ids": ids,
            "dequant": dequant_samples(path),
            "logits": logits,
            "greedy": greedy_runs,
        }
        out = os.path.join(args.out, f"decoder_{name}.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"decoders: wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
