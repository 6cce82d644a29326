"""What some components of a trained pipeline cost: words/s of the whole
pipeline against the same pipeline loaded without them, side by side.

    python benchmarks/component_cost.py --model PIPELINE --data D.spacy --without spanbert_rel
        --output FILE.json [--batch-sizes 16 64] [--rounds 3] [--limit N] [--threads T]

Both pipelines are loaded from the same folder (`spacy.load(..., exclude=...)`)
and run on Docs built from the gold words of D (no tokenization); they are
interleaved round by round, the order rotated each round, and the best round
of each counts. The table gives the share of the words/s the full pipeline
keeps, e.g. the issue target "a pipeline with spanbert_rel runs at least 0.8
of the words/s of the same pipeline without it".
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional


def fresh_docs(nlp, gold: List[Any]) -> List[Any]:
    from spacy.tokens import Doc

    return [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold]


def words_per_second(nlp, gold: List[Any], batch_size: int) -> float:
    docs = fresh_docs(nlp, gold)
    start = time.perf_counter()
    for _ in nlp.pipe(docs, batch_size=batch_size):
        pass
    return sum(len(d) for d in docs) / (time.perf_counter() - start)


def measure(model: Path, data: Path, without: List[str], batch_sizes: List[int], rounds: int, limit: int):
    """RETURNS (Dict[str, Any]): words/s of "full" and "without" per batch
    size (best round, and every round) and the share the full one keeps."""
    import spacy
    from spacy.tokens import DocBin

    import spacy_spanbert  # noqa: F401  (registers the components)

    pipelines = {"full": spacy.load(model), "without": spacy.load(model, exclude=without)}
    missing = [name for name in without if name not in pipelines["full"].pipe_names]
    if missing:
        raise SystemExit(f"--without {missing}: not in the pipeline {pipelines['full'].pipe_names}")
    gold = list(DocBin().from_disk(data).get_docs(pipelines["full"].vocab))
    gold = gold[:limit] if limit else gold
    for nlp in pipelines.values():  # warm-up
        words_per_second(nlp, gold[:16], 16)
    rounds_out: Dict[str, Dict[str, List[float]]] = {name: {str(b): [] for b in batch_sizes} for name in pipelines}
    names = list(pipelines)
    for r in range(rounds):
        for batch_size in batch_sizes:
            for name in names[r % 2 :] + names[: r % 2]:
                rounds_out[name][str(batch_size)].append(words_per_second(pipelines[name], gold, batch_size))
    best = {name: {b: max(v) for b, v in per.items()} for name, per in rounds_out.items()}
    return {
        "pipe_names": {name: nlp.pipe_names for name, nlp in pipelines.items()},
        "n_docs": len(gold),
        "n_words": sum(len(d) for d in gold),
        "rounds_words_per_second": rounds_out,
        "words_per_second": best,
        "share_kept": {b: best["full"][b] / best["without"][b] for b in best["full"]},
    }


def table(result: Dict[str, Any]) -> str:
    sizes = list(result["share_kept"])
    lines = ["| pipeline | " + " | ".join(f"words/s, batch {b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name in ("without", "full"):
        row = " | ".join(f"{result['words_per_second'][name][b]:.0f}" for b in sizes)
        lines.append(f"| {' '.join(result['pipe_names'][name])} | {row} |")
    lines.append("| share kept | " + " | ".join(f"{result['share_kept'][b]:.2f}" for b in sizes) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained pipeline folder")
    parser.add_argument("--data", type=Path, required=True, help="gold docs (.spacy) to run on")
    parser.add_argument("--without", nargs="+", required=True, help="the components whose cost to measure")
    parser.add_argument("--output", type=Path, required=True, help="FILE.json")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="only the first N docs (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.limit < 0 or any(b < 1 for b in args.batch_sizes):
        parser.error("--rounds and --batch-sizes must be positive, --limit 0 (all) or positive")
    for path, what in ((args.model / "config.cfg", "--model"), (args.data, "--data")):
        if not path.exists():
            parser.error(f"{what}: {path} does not exist")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure(args.model, args.data, args.without, args.batch_sizes, args.rounds, args.limit)
    result["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from optimize import machine

    result["machine"] = machine(torch.get_num_threads())
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
