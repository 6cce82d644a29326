"""Speed and memory of `spanbert_coref` on one long document, against the
transformer alone (issue #37's targets).

    python benchmarks/coref_speed.py --encoder PATH_OR_NAME --output FILE.json
        [--words 2000] [--scale 10] [--rounds 3] [--data litbank_dev.spacy]
        [--threads T]
    python benchmarks/coref_speed.py --model TRAINED_PIPELINE --output FILE.json ...

1. The pipeline: configs/coref.cfg (transformer -> spanbert -> spanbert_coref)
   with `--encoder` as the transformer (`do_lower_case` from the encoder's
   tokenizer config, as accuracy.py does: true for MiniLM), initialised from
   one synthetic example, so the heads are untrained; or `--model`, a trained
   pipeline with those three components. Untrained weights cost the same:
   the model keeps the top `mention_ratio * n_tokens` candidates by mention
   score (`torch.topk` in `CorefModule._prune`, whatever the scores are),
   then ranks up to `max_antecedents` of the previous `antecedent_window`
   kept mentions of each, so every tensor it builds has the same shape for
   any weights. Only the decoding of clusters (`follow_antecedents`, linear
   in the kept mentions) and the number of span groups written depend on the
   scores, and they are a small part of the head's time.
2. The document: `--words` words of `--data` (the gold words of its docs in
   order, concatenated until the count is reached; one LitBank dev doc is
   about 2,000 words, so usually the first doc truncated), or of a synthetic
   narrative without `--data`; the long document is `--scale` times as many
   words, taken the same way. Each run gets a fresh Doc built from the words
   (no run pays for tokenization, none reuses another's annotations).
3. Timed with `time.perf_counter`, after one warm-up run, in `--rounds`
   interleaved rounds (the order rotated each round, so machine noise hits
   all alike), the median counting: (a) the transformer component alone;
   (b) the whole pipeline on the document; (c) the whole pipeline on the
   long document. The whole pipeline is its components called in order, as
   `nlp(doc)` does; each component is timed, which gives the split
   transformer / spanbert / spanbert_coref, and the pipeline's time is their
   sum.
4. Memory: the kernel's peak-RSS counter (VmHWM) is reset before each
   component ("5" > /proc/self/clear_refs, Linux >= 4.0) and read after it,
   so each component's peak RSS growth over the RSS before it is its own;
   the peak RSS of the whole long-doc run is the highest of those readings
   (the largest over the rounds). tracemalloc would miss the tensors (torch
   allocates outside Python's allocator). Without clear_refs, only the
   process's `ru_maxrss` is reported.

Reports (b)/(a) (target <= 1.5), (c)/(b) (target <= 1.5 * scale: 15 for a
10x longer doc), the same ratio for the head alone and for its memory; prints
a Markdown table and writes FILE.json with the settings, the machine, every
round's times and the medians.
"""

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "coref.cfg"
COMPONENTS = ("transformer", "spanbert", "spanbert_coref")
# The runs of a round: the transformer alone, the pipeline, the pipeline on the long doc.
RUNS = ("transformer_alone", "pipeline", "pipeline_long")
TARGET_RATIO = 1.5  # whole pipeline / transformer alone
TARGET_GROWTH = 1.5  # time ratio per length ratio: 15x for a 10x longer doc
# Without --data: a narrative with names, pronouns and noun phrases to resolve.
SYNTHETIC = (
    "Elizabeth walked to the old house by the river on a cold morning . She found her brother "
    "Thomas in the garden , reading a letter from their father . He looked up and told her that "
    "the letter had come from London the night before . The old man wrote that he was ill and "
    "that he wanted his children to come home before the winter . Elizabeth took the letter from "
    "Thomas and read it twice . Her hands were shaking , and the garden seemed smaller than it "
    "had been when they were young . They decided to leave for the city the next day , and "
    "Thomas went into the house to tell their mother ."
).split()


# --------------------------------------------------------------------------
# the pipeline and the documents


def build_pipeline(encoder: str):
    """configs/coref.cfg with `encoder` as the transformer, initialised (the
    heads untrained) from one synthetic example with two gold clusters."""
    from spacy import util
    from spacy.tokens import Span
    from spacy.training import Example

    import spacy_spanbert  # noqa: F401

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from accuracy import encoder_lowercase

    encoder = str(encoder)
    config = util.load_config(CONFIG, interpolate=False)
    transformer = config["components"]["transformer"]["model"]
    transformer["name"] = encoder
    lowercase = encoder_lowercase(encoder)
    if lowercase is None:
        del transformer["tokenizer_config"]["do_lower_case"]
    else:
        transformer["tokenizer_config"]["do_lower_case"] = lowercase
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    words = SYNTHETIC[:40]
    reference = nlp.make_doc(" ".join(words))
    at = {word: i for i, word in reversed(list(enumerate(words)))}  # first occurrence
    for n, cluster in enumerate([("Elizabeth", "She", "her"), ("Thomas", "He")], 1):
        reference.spans[f"coref_clusters_{n}"] = [Span(reference, at[w], at[w] + 1) for w in cluster]
    example = Example(nlp.make_doc(reference.text), reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W600: gold mentions the suggester misses (irrelevant here)
        nlp.initialize(lambda: [example])
    return nlp


def load_pipeline(model: Path):
    import spacy

    import spacy_spanbert  # noqa: F401

    nlp = spacy.load(model)
    missing = [name for name in COMPONENTS if name not in nlp.pipe_names]
    if missing:
        raise SystemExit(f"--model {model}: the pipeline has no {', '.join(missing)} (pipeline: {nlp.pipe_names})")
    return nlp


def source_words(data: Optional[Path], vocab) -> List[Tuple[str, bool]]:
    """(word, followed by a space) of `data`'s docs in order, or of the
    synthetic narrative; a space is put between two docs."""
    if data is None:
        return [(word, True) for word in SYNTHETIC]
    from spacy.tokens import DocBin

    words: List[Tuple[str, bool]] = []
    for doc in DocBin().from_disk(data).get_docs(vocab):
        words.extend((t.text, bool(t.whitespace_)) for t in doc)
        if words:
            words[-1] = (words[-1][0], True)
    return words


def take_words(source: Sequence[Tuple[str, bool]], n: int) -> Tuple[List[str], List[bool]]:
    """The first `n` of `source`, cycling through it when it is shorter."""
    picked = [source[i % len(source)] for i in range(n)]
    return [w for w, _ in picked], [s for _, s in picked]


# --------------------------------------------------------------------------
# measurements


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def can_reset_peak() -> bool:
    """Whether the kernel's peak-RSS counter can be reset (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kb("VmHWM")
    except (OSError, StopIteration):
        return False
    return True


def run_components(nlp, names: Sequence[str], words, spaces, memory: bool) -> Tuple[Any, Dict[str, Dict[str, float]]]:
    """Run the components `names` in order on a fresh Doc of `words`.
    RETURNS: the doc and, per component, "seconds" and (if `memory`)
    "peak_rss_mb" (VmHWM during it) and "peak_growth_mb" (over the RSS before it)."""
    from spacy.tokens import Doc

    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    gc.collect()
    out: Dict[str, Dict[str, float]] = {}
    for name in names:
        proc = nlp.get_pipe(name)
        if memory:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            before = _status_kb("VmRSS")
        start = time.perf_counter()
        doc = proc(doc)
        row = {"seconds": time.perf_counter() - start}
        if memory:
            peak = _status_kb("VmHWM")
            row["peak_rss_mb"] = peak / 1024
            row["peak_growth_mb"] = (peak - before) / 1024
        out[name] = row
    return doc, out


def round_order(names: Sequence[str], round_index: int) -> List[str]:
    """The runs of a round, rotated by one each round."""
    shift = round_index % len(names)
    return list(names[shift:]) + list(names[:shift])


def doc_counts(doc, nlp) -> Dict[str, int]:
    """What the pipeline found in `doc`: tokens, candidates, kept mentions,
    clusters and scored antecedent pairs (kept mentions x max_antecedents, at most)."""
    coref = nlp.get_pipe("spanbert_coref")
    prefix = coref.cfg["span_cluster_prefix"]
    spans_key = nlp.get_pipe("spanbert").cfg.get("spans_key", "spanbert")
    kept = len(doc.spans[coref.cfg["mentions_key"]])
    width = min(coref.model.attrs["max_antecedents"], coref.model.attrs["antecedent_window"], max(kept - 1, 1))
    return {
        "tokens": len(doc),
        "candidates": len(doc.spans[spans_key]) if spans_key in doc.spans else -1,
        "kept_mentions": kept,
        "clusters": sum(1 for key in doc.spans if key.startswith(prefix + "_")),
        "scored_pairs": kept * width,
    }


def measure(nlp, short: Tuple[List[str], List[bool]], long: Tuple[List[str], List[bool]], rounds: int) -> Dict:
    """Warm up, then time the three runs in interleaved rounds.
    RETURNS (Dict): "rounds" {run: [per round {component: row}]}, "docs" {short, long: counts}."""
    memory = can_reset_peak()
    plan = {
        "transformer_alone": (["transformer"], short),
        "pipeline": (list(COMPONENTS), short),
        "pipeline_long": (list(COMPONENTS), long),
    }
    run_components(nlp, COMPONENTS, *short, memory=False)  # warm-up: lazy imports, first allocations
    raw: Dict[str, List[Dict[str, Dict[str, float]]]] = {run: [] for run in RUNS}
    docs: Dict[str, Dict[str, int]] = {}
    for r in range(rounds):
        for run in round_order(RUNS, r):
            names, (words, spaces) = plan[run]
            doc, row = run_components(nlp, names, words, spaces, memory=memory)
            raw[run].append(row)
            if run != "transformer_alone":
                docs["long" if run == "pipeline_long" else "short"] = doc_counts(doc, nlp)
            del doc
            print(f"round {r + 1} {run}: {sum(v['seconds'] for v in row.values()):.3f} s", flush=True)
    return {"rounds": raw, "docs": docs, "memory_per_component": memory}


def summarize(raw: Dict[str, List[Dict[str, Dict[str, float]]]], scale: int) -> Dict[str, Any]:
    """Medians, the split and the ratios against their targets."""
    seconds = {run: [sum(v["seconds"] for v in row.values()) for row in rows] for run, rows in raw.items()}
    median = {run: statistics.median(values) for run, values in seconds.items()}
    split = {
        run: {name: statistics.median(row[name]["seconds"] for row in raw[run]) for name in COMPONENTS}
        for run in ("pipeline", "pipeline_long")
    }
    memory: Dict[str, Any] = {}
    if all("peak_growth_mb" in v for rows in raw.values() for row in rows for v in row.values()):
        for run in ("pipeline", "pipeline_long"):
            memory[run] = {name: max(row[name]["peak_growth_mb"] for row in raw[run]) for name in COMPONENTS}
            memory[run]["peak_rss_mb"] = max(v["peak_rss_mb"] for row in raw[run] for v in row.values())
    ratio = median["pipeline"] / median["transformer_alone"]
    growth = median["pipeline_long"] / median["pipeline"]
    ratios = {
        "pipeline_to_transformer": ratio,
        "pipeline_to_transformer_target": TARGET_RATIO,
        "long_to_short": growth,
        "long_to_short_target": TARGET_GROWTH * scale,
        "coref_long_to_short": split["pipeline_long"]["spanbert_coref"] / split["pipeline"]["spanbert_coref"],
        "transformer_long_to_short": split["pipeline_long"]["transformer"] / split["pipeline"]["transformer"],
        "coref_memory_long_to_short": (
            memory["pipeline_long"]["spanbert_coref"] / memory["pipeline"]["spanbert_coref"]
            if memory and memory["pipeline"]["spanbert_coref"] > 0
            else None
        ),
    }
    ratios["meets_targets"] = ratio <= TARGET_RATIO and growth <= TARGET_GROWTH * scale
    return {
        "seconds": seconds,
        "median_seconds": median,
        "components_median_seconds": split,
        "memory_mb": memory,
        "ratios": ratios,
    }


def machine(threads: int) -> Dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from optimize import machine as optimize_machine

    return optimize_machine(threads)


# --------------------------------------------------------------------------
# output


def table(result: Dict[str, Any]) -> str:
    """A Markdown table of the runs, and the ratios against the targets."""
    med, split, docs = result["median_seconds"], result["components_median_seconds"], result["docs"]
    memory, ratios = result["memory_mb"], result["ratios"]
    head = ["run", "words", "seconds", "transformer", "spanbert", "spanbert_coref", "peak RSS MB (coref growth)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    words = {"transformer_alone": docs["short"]["tokens"], "pipeline": docs["short"]["tokens"]}
    words["pipeline_long"] = docs["long"]["tokens"]
    for run in RUNS:
        cells = [run, f"{words[run]:,}", f"{med[run]:.3f}"]
        if run in split:
            total = sum(split[run].values())
            cells += [f"{split[run][n]:.3f} ({100 * split[run][n] / total:.0f}%)" for n in COMPONENTS]
        else:
            cells += [f"{med[run]:.3f}", "", ""]
        mem = memory.get(run)
        cells.append(f"{mem['peak_rss_mb']:.0f} ({mem['spanbert_coref']:.0f})" if mem else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"pipeline / transformer alone: {ratios['pipeline_to_transformer']:.2f}x "
        f"(target <= {ratios['pipeline_to_transformer_target']:.1f})"
    )
    lines.append(
        f"{result['settings']['scale']}x longer doc: {ratios['long_to_short']:.2f}x the time "
        f"(target <= {ratios['long_to_short_target']:.1f}); spanbert_coref alone "
        f"{ratios['coref_long_to_short']:.2f}x, transformer {ratios['transformer_long_to_short']:.2f}x"
    )
    if ratios["coref_memory_long_to_short"] is not None:
        lines.append(f"spanbert_coref peak RSS growth, long / short: {ratios['coref_memory_long_to_short']:.2f}x")
    for name in ("short", "long"):
        d = docs[name]
        lines.append(
            f"{name} doc: {d['tokens']:,} tokens, {d['candidates']:,} candidates, {d['kept_mentions']:,} kept "
            f"mentions, {d['scored_pairs']:,} scored pairs, {d['clusters']:,} clusters"
        )
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None, help="the transformer: a local folder or a Hugging Face name")
    parser.add_argument("--model", type=Path, default=None, help="a trained coref pipeline instead of --encoder")
    parser.add_argument("--output", type=Path, required=True, help="FILE.json")
    parser.add_argument("--words", type=int, default=2000, help="words of the document (default 2000)")
    parser.add_argument("--scale", type=int, default=10, help="the long document is this many times longer")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median counts")
    parser.add_argument("--data", type=Path, default=None, help="docs (.spacy) to take the words from")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    if (args.encoder is None) == (args.model is None):
        parser.error("give --encoder (an untrained pipeline is built on it) or --model (a trained pipeline)")
    if args.model is not None and not (args.model / "config.cfg").is_file():
        parser.error(f"--model {args.model}: no such pipeline folder (a folder with config.cfg)")
    if args.words < 1 or args.scale < 1 or args.rounds < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--words, --scale, --rounds and --threads must be positive")
    if args.data is not None and not args.data.is_file():
        parser.error(f"--data {args.data}: no such file. Give a .spacy file of docs.")
    return args


def run(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    machine_info = machine(torch.get_num_threads())  # the load average before the run
    nlp = build_pipeline(args.encoder) if args.model is None else load_pipeline(args.model)
    source = source_words(args.data, nlp.vocab)
    if not source:
        raise SystemExit(f"--data {args.data}: the file holds no words")
    short = take_words(source, args.words)
    long = take_words(source, args.words * args.scale)
    measured = measure(nlp, short, long, args.rounds)
    coref = nlp.get_pipe("spanbert_coref")
    suggester = nlp.config["components"]["spanbert"]["model"]["suggester"]
    settings = {
        "encoder": args.encoder,
        "model": str(args.model) if args.model else None,
        "data": str(args.data) if args.data else None,
        "words": args.words,
        "scale": args.scale,
        "rounds": args.rounds,
        "trained": args.model is not None,
        "transformer_spans": dict(nlp.config["components"]["transformer"]["model"]["get_spans"]),
        "suggester": dict(suggester),
        "coref_model": {
            k: coref.model.attrs[k] for k in ("mention_ratio", "max_antecedents", "antecedent_window", "hidden_width")
        },
        "memory_per_component": measured["memory_per_component"],
    }
    result = {"settings": settings, "machine": machine_info, "docs": measured["docs"]}
    result.update(summarize(measured["rounds"], args.scale))
    result["rounds"] = measured["rounds"]
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
