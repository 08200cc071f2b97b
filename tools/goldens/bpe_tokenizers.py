#!/usr/bin/env python3
"""Goldens for Quarry's tokenizer.json byte-level BPE, made by Hugging Face's tokenizers.

No genuine package on PyPI carries a byte-level BPE tokenizer.json, so this script makes small ones
with the reference itself: a BPE model trained by tokenizers' BpeTrainer on SciFact documents, under
each pre-tokenizer layout real models ship (the tokenizer.json files of GPT-2, SmolLM, Qwen2 and
Llama 3 carry these exact pre-tokenizers, normalizers and regexes), with special added tokens. For each
it writes tests/data/golden/bpe/<style>/tokenizer.json and ids.json: the ids tokenizers gives for ~40
texts (SciFact queries and documents, and edge cases), without and with the post-processor's special
tokens, and the decoded text. Library versions are recorded.

Run by hand, never by CI:  tools/goldens/bpe_tokenizers.sh
"""
import argparse
import importlib.metadata
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from golden_inputs import EDGE_CASES, scifact_texts

# The Split patterns of Qwen2's and Llama 3's tokenizer.json (digits one at a time, or up to three).
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
         r"\s+(?!\S)|\s+")
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Besides the shared edge cases: decomposed accents (NFC composes them; Qwen2's normalizer), compatibility
# characters NFC leaves alone, and specials glued to words.
BPE_CASES = ["Cafe\u0301 and cafe\u0301s, A\u030angstro\u0308m", "\ufb01ne \uff21\uff22\uff23 \u2163",
             "x<|im_end|>y<|endoftext|><|endoftext|>"]


def make(style):
    """An untrained tokenizer laid out as the style's real tokenizer.json is."""
    if style == "gpt2":
        t = Tokenizer(models.BPE())
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif style == "smollm":
        t = Tokenizer(models.BPE())
        t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif style == "qwen2":
        t = Tokenizer(models.BPE())
        t.normalizer = normalizers.NFC()
        t.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif style == "llama3":
        t = Tokenizer(models.BPE(ignore_merges=True))
        t.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        raise SystemExit(f"unknown style {style}")
    t.decoder = decoders.ByteLevel()
    return t


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="BEIR SciFact folder")
    parser.add_argument("--out", required=True, help="tests/data/golden")
    parser.add_argument("--vocab-size", type=int, default=800)
    a = parser.parse_args()
    training = []
    with open(os.path.join(a.dataset, "corpus.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == 3000:
                break
            d = json.loads(line)
            training.append(d["title"] + " " + d["text"])
    texts = scifact_texts(a.dataset, 10, 4, max_chars=600) + EDGE_CASES + BPE_CASES
    versions = {"tokenizers": importlib.metadata.version("tokenizers")}
    for style in ("gpt2", "smollm", "qwen2", "llama3"):
        t = make(style)
        specials = SPECIALS + (["<|begin_of_text|>"] if style == "llama3" else [])
        trainer = trainers.BpeTrainer(vocab_size=a.vocab_size, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        t.train_from_iterator(training, trainer)
        if style == "llama3":
            bos = t.token_to_id("<|begin_of_text|>")
            t.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
        else:
            t.post_processor = processors.ByteLevel(trim_offsets=False)
        out = os.path.join(a.out, "bpe", style)
        os.makedirs(out, exist_ok=True)
        t.save(os.path.join(out, "tokenizer.json"), pretty=False)
        cases = []
        for text in texts:
            plain = t.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": plain, "ids_with_specials": t.encode(text).ids,
                          "decoded": t.decode(plain, skip_special_tokens=False)})
        with open(os.path.join(out, "ids.json"), "w", encoding="utf-8") as f:  # one case per line
            head = json.dumps({"style": style, "versions": versions, "vocab_size": t.get_vocab_size()}, ensure_ascii=False)
            f.write(head[:-1] + ', "cases": [\n' + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
        print(f"{style}: {t.get_vocab_size()} tokens, {len(cases)} texts -> {out}")


if __name__ == "__main__":
    main()
