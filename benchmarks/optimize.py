"""Speed, memory and accuracy of the optimized copies of a trained pipeline
(`spacy spanbert optimize`), side by side with spaCy's own CPU choices.

    python benchmarks/optimize.py --model PIPELINE --data D.spacy --output FILE.json
        [--variants torch-fp32 torch-int8 onnx-fp32 onnx-int8]
        [--baselines [NAME=]PIPELINE ...] [--batch-sizes 1 16 64] [--rounds 3]
        [--limit N] [--threads T] [--work DIR]

1. Builds each variant with `optimize_pipeline` into the work folder
   (default: FILE-variants/ next to FILE.json); torch-fp32 is the original
   pipeline itself. A variant already there is reused when its meta.json
   records the same runtime, precision and source, and is newer than every
   file of the source.
2. In a fresh process per system (so no cache helps): `spacy.load` wall time,
   and the peak RSS (the child's `VmHWM`) of loading it and running one
   pass at the largest batch size.
3. In this process, all systems loaded at once: words/s of `nlp.pipe` over
   the docs of D at each batch size, the input being Docs built from the gold
   words (no system pays for tokenization differently). The systems are
   interleaved round by round, their order rotated each round, so that
   machine noise hits all alike; the best round counts. With
   `--transformer-alone`, each variant is also timed with every component but
   its transformer excluded, and the table gives the share of those words/s
   the whole pipeline keeps (what its components after the transformer cost).
4. Scores on D: `Scorer(nlp).score` of the predictions against the gold docs
   (whatever keys the components produce: ents_* for NER, cats_* for text
   classification), plus `cats_accuracy` (share of docs whose top predicted
   category is a gold one) and the agreement with torch-fp32 (share of docs
   with identical `doc.ents` / identical top category).

Baselines are pipelines the variants are compared with (e.g. spaCy's
tok2vec + ner and transformer + ner trained on the same data and budget),
labelled by their folder name or as NAME=PATH. `--threads` sets
`torch.set_num_threads` here and in the child processes; ONNX Runtime
sessions follow torch's thread count.

Prints a Markdown table, writes FILE.json and FILE.png (speed at batch 16
against the main score; skipped when matplotlib is missing).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VARIANTS = ["torch-fp32", "torch-int8", "onnx-fp32", "onnx-int8"]
REFERENCE = "torch-fp32"
# The name suffix of a variant's transformer-alone row (--transformer-alone).
ALONE = " transformer alone"
RUNTIMES = ("torch", "onnx")
PRECISIONS = {"fp32": "none", "int8": "int8"}
# The batch size of the scoring pass and of the plot's speed axis.
PLOT_BATCH_SIZE = 16
# Tried in this order for the table's and the plot's score.
MAIN_SCORES = ("ents_f", "cats_score")


def parse_variant(name: str) -> Tuple[str, str]:
    """RETURNS (Tuple[str, str]): the runtime and quantize settings of
    `optimize_pipeline` for a variant name such as "onnx-int8"."""
    runtime, _, precision = name.partition("-")
    if runtime not in RUNTIMES or precision not in PRECISIONS:
        raise ValueError(
            f"unknown variant {name!r}: name a runtime ({', '.join(RUNTIMES)}) and a precision "
            f"({', '.join(PRECISIONS)}) joined by '-', e.g. onnx-int8. Variants: {', '.join(VARIANTS)}"
        )
    return runtime, PRECISIONS[precision]


def parse_baseline(spec: str) -> Tuple[str, Path]:
    """RETURNS (Tuple[str, Path]): the label and folder of a baseline given
    as PATH (labelled by the folder's name) or NAME=PATH."""
    name, sep, path = spec.partition("=")
    if not sep:
        path = spec
        name = Path(spec).name or Path(spec).resolve().name
    if not name or not path:
        raise ValueError(f"--baselines {spec!r}: give a pipeline folder, or NAME=FOLDER")
    return name, Path(path)


def round_order(names: Sequence[str], round_index: int) -> List[str]:
    """The systems in the order they run in a round: rotated by one each
    round, so no system always runs first (or right after another)."""
    if not names:
        return []
    shift = round_index % len(names)
    return list(names[shift:]) + list(names[:shift])


def schedule(names: Sequence[str], batch_sizes: Sequence[int], rounds: int) -> List[Tuple[int, int, str]]:
    """RETURNS (List[Tuple[int, int, str]]): (round, batch size, system) in
    the order they are timed: within a round and batch size, every system
    runs once before the next batch size."""
    return [
        (r, batch_size, name) for r in range(rounds) for batch_size in batch_sizes for name in round_order(names, r)
    ]


def main_score(scores: Dict[str, Any]) -> Tuple[Optional[str], Optional[float]]:
    """The score the table and plot show: the first of MAIN_SCORES the
    components produced, else the first other "*_f" score but the tokenizer's."""
    for key in MAIN_SCORES:
        if isinstance(scores.get(key), (int, float)):
            return key, float(scores[key])
    for key, value in scores.items():
        if key.endswith("_f") and key != "token_f" and isinstance(value, (int, float)):
            return key, float(value)
    return None, None


def assemble(
    settings: Dict[str, Any],
    machine: Dict[str, Any],
    n_docs: int,
    n_words: int,
    systems: Dict[str, Dict[str, Any]],
) -> Dict[str, Any]:
    """The result as written to JSON, from the raw measurements.

    systems (Dict[str, Dict[str, Any]]): per system "kind" ("variant" or
        "baseline"), "path", "rounds_words_per_second" ({batch size: [words/s
        of each round]}), "load_seconds", "peak_rss_mb", "scores",
        "agreement" and whatever else to keep (build details).
    RETURNS (Dict[str, Any]): settings, machine, n_docs, n_words and, per
        system, the above plus "words_per_second" (best round per batch
        size), "ratio_to_torch_fp32" (None without torch-fp32) and
        "main_score" ({"key", "value"}) and "share_of_transformer_alone"
        (words/s over those of the system's `ALONE` row; None without one).
        Batch sizes are string keys, as JSON keeps them.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for name, raw in systems.items():
        row = dict(raw)
        row["rounds_words_per_second"] = {str(b): list(v) for b, v in raw["rounds_words_per_second"].items()}
        row["words_per_second"] = {b: max(v) for b, v in row["rounds_words_per_second"].items()}
        key, value = main_score(raw.get("scores") or {})
        row["main_score"] = {"key": key, "value": value}
        out[name] = row
    reference = out.get(REFERENCE)
    for row in out.values():
        row["ratio_to_torch_fp32"] = (
            {b: rate / reference["words_per_second"][b] for b, rate in row["words_per_second"].items()}
            if reference is not None
            else None
        )
    for name, row in out.items():
        alone = out.get(name + ALONE)
        row["share_of_transformer_alone"] = (
            {b: rate / alone["words_per_second"][b] for b, rate in row["words_per_second"].items()}
            if alone is not None
            else None
        )
    return {"settings": settings, "machine": machine, "n_docs": n_docs, "n_words": n_words, "systems": out}


def table(result: Dict[str, Any]) -> str:
    """A Markdown table: words/s per batch size (ratio to torch-fp32), peak
    RSS, load time and the main score (x100) of every system."""
    batch_sizes = [str(b) for b in result["settings"]["batch_sizes"]]
    keys = {row["main_score"]["key"] for row in result["systems"].values()} - {None}
    score_name = " / ".join(sorted(keys)) or "score"
    head = ["system"] + [f"words/s, batch {b}" for b in batch_sizes] + ["peak RSS MB", "load s", score_name]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["systems"].items():
        cells = [name]
        for b in batch_sizes:
            ratio = f" ({row['ratio_to_torch_fp32'][b]:.2f}x)" if row["ratio_to_torch_fp32"] else ""
            cells.append(f"{row['words_per_second'][b]:.0f}{ratio}")
        cells.append(_number(row.get("peak_rss_mb"), "{:.0f}"))
        cells.append(_number(row.get("load_seconds"), "{:.2f}"))
        value = row["main_score"]["value"]
        cells.append(_number(None if value is None else value * 100, "{:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    for name, row in result["systems"].items():
        if row.get("share_of_transformer_alone"):
            shares = ", ".join(f"{row['share_of_transformer_alone'][b]:.2f} (batch {b})" for b in batch_sizes)
            lines.append(f"\n{name} keeps {shares} of its transformer's words/s alone")
    return "\n".join(lines)


def _number(value: Optional[float], fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def label_lines(points: Dict[str, Tuple[float, float]]) -> Dict[str, int]:
    """The text line (0 = next to the point, 1 = one line below, ...) of
    each point's label: the first line that no earlier label within a label's
    width (15% of the x range) and 3% of the y range already takes, so that
    labels of systems with similar speed and score do not overlap."""
    xs, ys = [x for x, _ in points.values()], [y for _, y in points.values()]
    near_x, near_y = 0.15 * (max(xs) - min(xs) or 1.0), 0.03 * (max(ys) - min(ys) or 1.0)
    placed: List[Tuple[float, float, int]] = []
    lines = {}
    for name, (x, y) in points.items():
        taken = {line for px, py, line in placed if abs(x - px) < near_x and abs(y - py) < near_y}
        lines[name] = min(set(range(len(taken) + 1)) - taken)
        placed.append((x, y, lines[name]))
    return lines


def plot(result: Dict[str, Any], path: Path) -> Optional[Path]:
    """Words/s at batch 16 (or the nearest batch size run) against the main
    score, one labelled point per system. RETURNS (Optional[Path]): the
    file, or None when matplotlib is missing or no system has a score."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    batch = str(min(result["settings"]["batch_sizes"], key=lambda b: abs(b - PLOT_BATCH_SIZE)))
    rows = {n: r for n, r in result["systems"].items() if r["main_score"]["value"] is not None}
    if not rows:
        print("no system has a score: no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    points = {n: (r["words_per_second"][batch], r["main_score"]["value"] * 100) for n, r in rows.items()}
    lines = label_lines(points)
    for name, (x, y) in points.items():
        ax.scatter([x], [y], marker="o" if rows[name]["kind"] == "variant" else "s")
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4 - 10 * lines[name]), fontsize=8)
    keys = sorted({r["main_score"]["key"] for r in rows.values()})
    ax.set_xlabel(f"words / s, batch {batch} (torch threads: {result['machine']['torch_threads']})")
    ax.set_ylabel(" / ".join(keys) + " (x100)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def check_model(model: Path) -> None:
    """Refuse a --model that is not an original transformer pipeline."""
    import spacy

    from spacy_spanbert.commands.optimize import META_KEY

    if not (model / "config.cfg").is_file():
        raise ValueError(f"--model {model}: no such pipeline folder (a folder with config.cfg, e.g. model-best)")
    config = spacy.util.load_config(model / "config.cfg")
    components = config.get("components", {})
    if not any(block.get("factory") == "transformer" for block in components.values()):
        raise ValueError(
            f"--model {model}: the pipeline has no spacy-transformers 'transformer' component "
            f"(pipeline: {list(config['nlp']['pipeline'])}), so there is nothing to optimize. "
            "Give a transformer pipeline; compare other pipelines with --baselines."
        )
    meta = model / "meta.json"
    if meta.is_file() and META_KEY in json.loads(meta.read_text(encoding="utf8")):
        raise ValueError(f"--model {model}: this pipeline is already optimized. Give the original pipeline.")


def reusable(folder: Path, model: Path, runtime: str, quantize: str) -> bool:
    """Whether `folder` holds a variant built from `model` with these
    settings, after the last change to `model`."""
    from spacy_spanbert.commands.optimize import META_KEY

    meta = folder / "meta.json"
    if not meta.is_file():
        return False
    record = json.loads(meta.read_text(encoding="utf8")).get(META_KEY) or {}
    if (record.get("runtime"), record.get("quantize")) != (runtime, quantize):
        return False
    if Path(record.get("source", {}).get("path", "")).resolve() != model.resolve():
        return False
    newest = max(p.stat().st_mtime for p in model.rglob("*") if p.is_file())
    return meta.stat().st_mtime >= newest


def build_variants(model: Path, variants: Sequence[str], work: Path) -> Dict[str, Dict[str, Any]]:
    """RETURNS (Dict[str, Dict[str, Any]]): per variant its "path",
    "runtime", "quantize", "built" ("original", "reused" or "built") and
    "build_seconds"."""
    from spacy_spanbert.commands.optimize import optimize_pipeline

    built = {}
    for name in variants:
        runtime, quantize = parse_variant(name)
        row: Dict[str, Any] = {"runtime": runtime, "quantize": quantize, "build_seconds": None}
        if name == REFERENCE:
            row.update(path=str(model), built="original")
        elif reusable(work / name, model, runtime, quantize):
            row.update(path=str(work / name), built="reused")
        else:
            work.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            optimize_pipeline(model, work / name, runtime=runtime, quantize=quantize)
            row.update(path=str(work / name), built="built", build_seconds=time.perf_counter() - start)
            print(f"built {name} in {row['build_seconds']:.1f} s", flush=True)
        built[name] = row
    return built


def gold_docs(data: Path, vocab, limit: int) -> List[Any]:
    from spacy.tokens import DocBin

    docs = list(DocBin().from_disk(data).get_docs(vocab))
    return docs[:limit] if limit else docs


def fresh_inputs(nlp, gold: Sequence[Any]) -> List[Any]:
    """Unannotated Docs of the gold words, in `nlp`'s vocab."""
    from spacy.tokens import Doc

    return [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold]


def fresh_process(argument: str) -> None:
    """Run in a child process: the `spacy.load` time of a pipeline and the
    peak RSS after one pass at a batch size. Prints one JSON line."""
    options = json.loads(argument)
    import torch

    if options["threads"]:
        torch.set_num_threads(options["threads"])
    import spacy

    import spacy_spanbert  # noqa: F401  (registers the components)

    start = time.perf_counter()
    nlp = spacy.load(options["path"])
    load_seconds = time.perf_counter() - start
    inputs = fresh_inputs(nlp, gold_docs(Path(options["data"]), nlp.vocab, options["limit"]))
    for _ in nlp.pipe(inputs, batch_size=options["batch_size"]):
        pass
    print(json.dumps({"load_seconds": load_seconds, "peak_rss_mb": peak_rss_kb() / 1024}))


def peak_rss_kb() -> float:
    """This process's peak resident set size in KB: `VmHWM` of
    /proc/self/status. Not `ru_maxrss`: Linux carries it over an exec, so a
    child forked from a large parent reports the parent's size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure_fresh(path: str, data: Path, *, limit: int, batch_size: int, threads: Optional[int]) -> Dict[str, float]:
    """`fresh_process` in a child process. RETURNS (Dict[str, float]):
    load_seconds and peak_rss_mb."""
    options = {"path": path, "data": str(data), "limit": limit, "batch_size": batch_size, "threads": threads}
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('optimize_benchmark', {str(Path(__file__).resolve())!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "module.fresh_process(sys.argv[1])"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(options)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {path} in a fresh process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_system(row: Dict[str, Any]):
    """The pipeline of a system; for a transformer-alone row, the same
    folder with every component but the transformer excluded."""
    import spacy

    if row["kind"] != "transformer_alone":
        return spacy.load(row["path"])
    config = spacy.util.load_config(Path(row["path"]) / "config.cfg")
    others = [name for name in config["nlp"]["pipeline"] if name != "transformer"]
    return spacy.load(row["path"], exclude=others)


def words_per_second(nlp, gold: Sequence[Any], batch_size: int) -> float:
    inputs = fresh_inputs(nlp, gold)
    n_words = sum(len(doc) for doc in inputs)
    start = time.perf_counter()
    for _ in nlp.pipe(inputs, batch_size=batch_size):
        pass
    return n_words / (time.perf_counter() - start)


def score(nlp, gold: Sequence[Any], batch_size: int) -> Tuple[Dict[str, Any], List[Any]]:
    """RETURNS (Tuple[Dict[str, Any], List[Doc]]): spaCy's scores of the
    predictions against `gold`, plus cats_accuracy where the docs have
    categories; and the predicted docs."""
    from spacy.scorer import Scorer
    from spacy.training import Example

    predicted = list(nlp.pipe(fresh_inputs(nlp, gold), batch_size=batch_size))
    scores = Scorer(nlp).score([Example(p, g) for p, g in zip(predicted, gold)])
    accuracy = cats_accuracy(predicted, gold)
    if accuracy is not None:
        scores["cats_accuracy"] = accuracy
    return scores, predicted


def cats_accuracy(predicted: Sequence[Any], gold: Sequence[Any]) -> Optional[float]:
    """Share of the docs with a gold category (cats >= 0.5) whose top
    predicted category is one; None without such docs or predictions."""
    hits = n = 0
    for p, g in zip(predicted, gold):
        positive = {label for label, value in g.cats.items() if value >= 0.5}
        if positive and p.cats:
            n += 1
            hits += max(p.cats, key=p.cats.get) in positive
    return hits / n if n else None


def agreement(reference: Sequence[Any], docs: Sequence[Any]) -> Dict[str, Optional[float]]:
    """RETURNS (Dict[str, Optional[float]]): "ents", the share of docs with
    identical entities, and "top_cat", the share with the same top category
    (None without categories)."""

    def ents(doc):
        return [(e.start, e.end, e.label_) for e in doc.ents]

    same_ents = sum(ents(a) == ents(b) for a, b in zip(reference, docs))
    with_cats = [(a, b) for a, b in zip(reference, docs) if a.cats and b.cats]
    same_cats = sum(max(a.cats, key=a.cats.get) == max(b.cats, key=b.cats.get) for a, b in with_cats)
    return {
        "ents": same_ents / len(docs) if docs else None,
        "top_cat": same_cats / len(with_cats) if with_cats else None,
    }


def machine(threads: int) -> Dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    model_name = None
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ["spacy-spanbert", "spacy", "spacy-transformers", "transformers", "torch", "onnxruntime"]:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "cpu": model_name,
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch_threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "versions": versions,
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the trained transformer pipeline folder")
    parser.add_argument("--data", type=Path, required=True, help="gold docs (.spacy) to time and score on")
    parser.add_argument("--output", type=Path, required=True, help="FILE.json (and FILE.png)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"default: {' '.join(VARIANTS)}")
    parser.add_argument("--baselines", nargs="*", default=[], help="other pipelines: FOLDER or NAME=FOLDER")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    parser.add_argument("--limit", type=int, default=0, help="only the first N docs (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--work", type=Path, default=None, help="folder of the variants (default: FILE-variants)")
    parser.add_argument(
        "--transformer-alone",
        action="store_true",
        help="also time each variant's transformer alone (the other components excluded), for the share the "
        "components after it keep",
    )
    args = parser.parse_args(argv)
    from spacy.tokens import DocBin

    try:
        for name in args.variants:
            parse_variant(name)
        args.baselines = dict(parse_baseline(spec) for spec in args.baselines)
    except ValueError as err:
        parser.error(str(err))
    names = list(args.variants) + list(args.baselines)
    if len(set(names)) != len(names):
        parser.error(f"each variant and baseline needs its own name, got {names}")
    if args.rounds < 1 or args.limit < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--rounds and --threads must be positive, --limit 0 (all) or positive")
    if any(b < 1 for b in args.batch_sizes):
        parser.error(f"--batch-sizes must be positive, got {args.batch_sizes}")
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file. Give a .spacy file of gold docs.")
    if not len(DocBin().from_disk(args.data)):
        parser.error(f"--data {args.data}: the file holds no docs")
    for name, folder in args.baselines.items():
        if not (folder / "config.cfg").is_file():
            parser.error(f"--baselines {name}={folder}: no such pipeline folder (a folder with config.cfg)")
    if any(v.startswith("onnx") for v in args.variants) and not _has("onnxruntime"):
        parser.error(
            "the onnx variants need onnxruntime: `pip install spacy-spanbert[onnx]`, or leave them out of --variants"
        )
    try:
        check_model(args.model)
    except ValueError as err:
        parser.error(str(err))
    if args.work is None:
        args.work = args.output.with_name(args.output.stem + "-variants")
    return args


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Build, measure and score every system. RETURNS (Dict[str, Any]): `assemble`'s result."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    import spacy_spanbert  # noqa: F401  (registers the components)

    machine_info = machine(torch.get_num_threads())  # the load average before the run
    systems: Dict[str, Dict[str, Any]] = {
        name: {"kind": "variant", **row} for name, row in build_variants(args.model, args.variants, args.work).items()
    }
    systems.update({name: {"kind": "baseline", "path": str(path)} for name, path in args.baselines.items()})
    if args.transformer_alone:
        for name in list(args.variants):
            systems[name + ALONE] = {"kind": "transformer_alone", "path": systems[name]["path"]}
    largest = max(args.batch_sizes)
    for name, row in systems.items():
        if row["kind"] == "transformer_alone":
            continue
        row.update(measure_fresh(row["path"], args.data, limit=args.limit, batch_size=largest, threads=args.threads))
        print(f"{name}: load {row['load_seconds']:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    pipelines = {name: load_system(row) for name, row in systems.items()}
    gold = {name: gold_docs(args.data, nlp.vocab, args.limit) for name, nlp in pipelines.items()}
    n_docs = len(next(iter(gold.values())))
    n_words = sum(len(doc) for doc in next(iter(gold.values())))
    for name, nlp in pipelines.items():  # warm-up: first-call allocations and lazy imports
        words_per_second(nlp, gold[name][:16], 16)
    rates: Dict[str, Dict[int, List[float]]] = {name: {b: [] for b in args.batch_sizes} for name in systems}
    for _, batch_size, name in schedule(list(systems), args.batch_sizes, args.rounds):
        rates[name][batch_size].append(words_per_second(pipelines[name], gold[name], batch_size))
    predictions = {}
    for name, nlp in pipelines.items():
        systems[name]["rounds_words_per_second"] = rates[name]
        if systems[name]["kind"] != "transformer_alone":
            systems[name]["scores"], predictions[name] = score(nlp, gold[name], PLOT_BATCH_SIZE)
    for name, row in systems.items():
        known = REFERENCE in predictions and name in predictions
        row["agreement"] = agreement(predictions[REFERENCE], predictions[name]) if known else None
    settings = {
        "model": str(args.model),
        "data": str(args.data),
        "variants": list(args.variants),
        "baselines": {name: str(path) for name, path in args.baselines.items()},
        "batch_sizes": list(args.batch_sizes),
        "rounds": args.rounds,
        "limit": args.limit,
        "threads": args.threads,
        "work": str(args.work),
        "score_batch_size": PLOT_BATCH_SIZE,
        "order": [round_order(list(systems), r) for r in range(args.rounds)],
        "transformer_alone": args.transformer_alone,
    }
    return assemble(settings, machine_info, n_docs, n_words, systems)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    picture = plot(result, args.output.with_suffix(".png"))
    print(f"\nwrote {args.output}" + (f" and {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
