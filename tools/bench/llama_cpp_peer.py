#!/usr/bin/env python3
"""llama.cpp, the peer of scripts/bench-model.sh, on the benchmark's own random-weight checkpoint.

  convert SRC_DIR OUT.gguf TYPE    the float32 safetensors checkpoint bench_model wrote, as a GGUF file
                                   of type F32, BF16, Q8_0 or Q4_0 (every matrix at TYPE, quantised by
                                   gguf-py's port of ggml-quants.c; norms stay F32), with llama.cpp's
                                   query/key row order and a placeholder SentencePiece vocabulary
  bench FILE.gguf LABEL TOKENS...  prompt-processing time of llama.cpp (llama-cpp-python, built from
                                   its sdist by tools/goldens/decoders.sh) for each prompt length on 1
                                   and 2 threads, median of 3, logits for the last token only (as
                                   bench_model), then this process's peak RSS

Output lines have bench_model's form, with system=llama.cpp. Runs in $QUARRY_VENV_LLAMA.
"""
import json
import resource
import struct
import sys
import time

import numpy as np


def read_safetensors(path):
    """name -> float32 array (F32 or BF16 tensors), read from the file's header and data."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        raw = data[begin:end]
        if t["dtype"] == "F32":
            a = raw.view(np.float32)
        elif t["dtype"] == "BF16":
            a = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {t['dtype']}; expected F32 or BF16")
        out[name] = a.reshape(t["shape"])
    return out


def permute_rope_rows(w, heads):
    """Hugging Face's rotate-half row order to llama.cpp's interleaved one (convert_hf_to_gguf)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert(src, dst, type_name):
    import gguf

    qtype = getattr(gguf.GGMLQuantizationType, type_name)
    cfg = json.load(open(f"{src}/config.json"))
    weights = read_safetensors(f"{src}/model.safetensors")
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(dst, "llama")
    w.add_context_length(4096)
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    # A SentencePiece vocabulary of the checkpoint's size: llama.cpp needs one to load, and byte tokens
    # (it looks up <0x0A>); the benchmark feeds token ids, so the pieces are placeholders.
    vocab = cfg["vocab_size"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    tokens += [f"\u2581w{i}" for i in range(vocab - len(tokens))]
    types += [1] * (vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(vocab)])
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    layer_names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                   "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
                   "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
                   "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                   "mlp.down_proj.weight": "ffn_down.weight"}
    for name, a in weights.items():
        if name in names:
            out = names[name]
        else:
            layer, rest = name[len("model.layers."):].split(".", 1)
            out = f"blk.{layer}.{layer_names[rest]}"
        if rest_is(name, "q_proj"):
            a = permute_rope_rows(a, heads)
        elif rest_is(name, "k_proj"):
            a = permute_rope_rows(a, kv_heads)
        a = np.ascontiguousarray(a, dtype=np.float32)
        if a.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(out, a)
        else:
            w.add_tensor(out, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def rest_is(name, proj):
    return name.endswith(f"self_attn.{proj}.weight")


def bench(path, label, lengths):
    from llama_cpp import Llama

    for n in lengths:
        for threads in (1, 2):
            llm = Llama(model_path=path, n_ctx=max(lengths), n_batch=max(lengths), n_ubatch=max(lengths),
                        n_threads=threads, n_threads_batch=threads, verbose=False)
            vocab = llm.n_vocab()
            ids = [259 + (t * 7919) % (vocab - 259) for t in range(n)]  # bench_model's ids
            runs = []
            for rep in range(3):
                llm.reset()
                start = time.perf_counter()
                llm.eval(ids)
                runs.append(time.perf_counter() - start)
                if rep == 0 and threads == 1:
                    # Only the last token's logits were asked for: they are the context's first output row.
                    last = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))
                    print(json.dumps({"system": "llama.cpp", "dtype": label, "tokens": n,
                                      "last_argmax": int(last.argmax()), "last_max": float(last.max())}), flush=True)
            runs.sort()
            print(json.dumps({"system": "llama.cpp", "dtype": label, "tokens": n, "threads": threads,
                              "median_s": runs[1], "tok_per_s": n / runs[1]}), flush=True)
            del llm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"system": "llama.cpp", "dtype": label, "peak_rss_MiB": rss}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 5 and sys.argv[1] == "bench":
        bench(sys.argv[2], sys.argv[3], [int(t) for t in sys.argv[4:]])
    else:
        raise SystemExit(__doc__)
