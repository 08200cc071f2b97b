"""Tables of scripts/eval-decoders.sh's results.jsonl: nDCG@10 by scoring layer for each model, dataset
and depth (plain and calibrated), then each one's best setting against BM25 and against the shuffle.

    python3 tools/decoder_tables.py RESULTS.jsonl
"""
import collections
import json
import sys

DATASETS = {"scifact": "SciFact test", "dl19": "DL 2019 (run.bm25.trec)"}


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    # A rerun replaces the earlier row of the same cell.
    cells = {(r["model"], r["dataset"], r["depth"], r["setting"], r["layer"]): r for r in rows}
    groups = collections.defaultdict(list)
    for key, r in cells.items():
        groups[key[:3]].append(r)
    for model in sorted({k[0] for k in groups}):
        layers = sorted({r["layer"] for k, g in groups.items() if k[0] == model for r in g})
        print(f"\n{model}: nDCG@10 of BM25's top N reranked, by scoring layer (0-based)\n")
        print("| candidates | queries | BM25 | random | setting | " + " | ".join(f"L{l}" for l in layers) + " | s/query |")
        print("|---|---:|---:|---:|---|" + "---:|" * len(layers) + "---:|")
        for key in sorted(k for k in groups if k[0] == model):
            _, ds, depth = key
            g = groups[key]
            best = max(g, key=lambda r: r["ndcg10"])
            for setting in ("plain", "calibrated"):
                by_layer = {r["layer"]: r for r in g if r["setting"] == setting}
                if not by_layer:
                    continue
                first = next(iter(by_layer.values()))
                lead = (f"| {DATASETS.get(ds, ds)}, top {depth} | {first['queries']} | {first['bm25']:.4f} | "
                        f"{first['random']:.4f} |" if setting == "plain" else "| | | | |")
                values = []
                for l in layers:
                    r = by_layer.get(l)
                    if r is None:
                        values.append("-")
                    else:
                        v = f"{r['ndcg10']:.4f}"
                        values.append(f"**{v}**" if r is best else v)
                print(f"{lead} {setting} | " + " | ".join(values) + f" | {first['seconds_per_query']:.2f} |")
        print(f"\n{model}: the best setting of each row group (p: paired randomisation, 10,000 permutations)\n")
        print("| candidates | best | nDCG@10 | vs BM25 (p) | vs random (p) | cache: documents, seconds, precision |")
        print("|---|---|---:|---:|---:|---|")
        for key in sorted(k for k in groups if k[0] == model):
            _, ds, depth = key
            r = max(groups[key], key=lambda r: r["ndcg10"])
            print(f"| {DATASETS.get(ds, ds)}, top {depth} | L{r['layer']} {r['setting']} | {r['ndcg10']:.4f} | "
                  f"{r['vs_bm25']['diff']:+.4f} ({r['vs_bm25']['p']:.4f}) | "
                  f"{r['vs_random']['diff']:+.4f} ({r['vs_random']['p']:.4f}) | "
                  f"{r['cache_documents']}, {r['cache_seconds']:.0f} s, {r['cache_precision']} |")


if __name__ == "__main__":
    main(sys.argv[1])
