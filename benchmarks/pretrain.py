"""Does continued pretraining on the task's own training text help? Three
arms on the same fine-tuning budget, in one run:

    none     the encoder as shipped
    random   `spacy spanbert pretrain --masking random` (BERT's single pieces, no SBO)
    span     `spacy spanbert pretrain --masking span` (SpanBERT: spans + SBO)

    python benchmarks/pretrain.py --encoder NAME_OR_PATH --output DIR
        [--data ../shared/data] [--datasets wnut17 litbank] [--arms none random span]
        [--seeds 0 1 2] [--pretrain-steps 1000] [--pretrain-batch-size 32] [--seq-len 128]
        [--pretrain-lr 1e-4] [--finetune-steps 600] [--eval-frequency N] [--finetune-batch-words 1000]
        [--throughput-steps 24] [--no-throughput] [--only-throughput]

Pretraining reads only the training DocBin of each dataset (never dev text);
both pretraining arms see the same number of steps, sequences and tokens.
Fine-tuning is `benchmarks/accuracy.py ner` (WNUT-17) or `nested` (LitBank)
with `--systems spanbert`, once per arm and seed, the dev F of the best
checkpoint reported as mean, standard deviation and range over the seeds. Each
step's outputs are kept in DIR and skipped when present with the same budget,
so an interrupted run continues where it stopped. Each dataset's entry in
results.json records its budget: run one dataset at a time into the same DIR
to give them different fine-tuning budgets.

The throughput comparison trains the same encoder, batch size and sequence
length with (a) this package's loop (span masking + SBO, and random masking)
and (b) a plain Hugging Face masked-LM loop (DataCollatorForLanguageModeling +
AutoModelForMaskedLM(labels=...) + AdamW), alternating rounds of steps in one
process, and reports word pieces per second and their ratio.

Writes DIR/results.json and prints Markdown tables.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly

REPO = Path(__file__).resolve().parent.parent
DATASETS = {
    "wnut17": {
        "task": "ner",
        "metric": "ents_f",
        "convert": lambda data, split, out: ["conll", str(data / "wnut17" / f"{split}.conll"), str(out)],
    },
    "litbank": {
        "task": "nested",
        "metric": "spans_spanbert_ner_f",
        "convert": lambda data, split, out: ["litbank", str(data / "litbank" / split), str(out), "--n-sents", "8"],
    },
}
ARMS = ("none", "random", "span")


def run(command: List[str], log: Path) -> float:
    """Run `command`, its output appended to `log`; RETURNS the seconds it took."""
    print("$ " + " ".join(command), flush=True)
    started = time.perf_counter()
    with log.open("a", encoding="utf8") as stream:
        stream.write("$ " + " ".join(command) + "\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return time.perf_counter() - started


def convert(args, dataset: str) -> Dict[str, Path]:
    folder = args.output / "data"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "dev"):
        out = folder / f"{dataset}_{split}.spacy"
        if not out.exists():
            run(
                [sys.executable, "-m", "spacy_spanbert.convert", *DATASETS[dataset]["convert"](args.data, split, out)],
                args.output / "log.txt",
            )
        paths[split] = out
    return paths


def pretrain_arm(args, dataset: str, arm: str, train: Path) -> Dict[str, Any]:
    out = args.output / "pretrained" / f"{dataset}_{arm}"
    meta_path = out / "pretrain_meta.json"
    wanted = {
        "max_steps": args.pretrain_steps,
        "batch_size": args.pretrain_batch_size,
        "seq_len": args.seq_len,
        "lr": args.pretrain_lr,
        "masking": arm,
    }
    meta = srsly.read_json(meta_path) if meta_path.exists() else None
    # A finished run is reused only if it was made with this budget. A finished
    # run with another budget is redone from scratch: its checkpoint goes, since
    # the CLI refuses to resume a checkpoint made with other settings. Without
    # pretrain_meta.json the run was interrupted, and the CLI resumes it.
    if meta is not None and any(meta["settings"].get(key) != value for key, value in wanted.items()):
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
        meta_path.unlink()  # so an interruption of the new run resumes it
        meta = None
    if meta is None:
        wall = run(
            [
                sys.executable,
                "-m",
                "spacy",
                "spanbert",
                "pretrain",
                str(train),
                str(out),
                "--model",
                args.encoder,
                "--max-steps",
                str(args.pretrain_steps),
                "--batch-size",
                str(args.pretrain_batch_size),
                "--seq-len",
                str(args.seq_len),
                "--lr",
                str(args.pretrain_lr),
                "--masking",
                arm,
                "--seed",
                "0",
                "--save-every",
                str(max(1, args.pretrain_steps // 4)),
            ],
            args.output / "log.txt",
        )
        meta = srsly.read_json(meta_path)
        meta["wall_seconds"] = round(wall, 1)
        srsly.write_json(meta_path, meta)
    return {
        "path": str(out),
        **{
            k: meta.get(k)
            for k in (
                "steps",
                "tokens_seen",
                "train_seconds",
                "wall_seconds",
                "tokens_per_second",
                "fresh_mlm_head",
                "heldout_loss_before",
                "heldout_loss_after",
            )
        },
    }


def finetune(args, dataset: str, arm: str, seed: int, encoder: str, paths: Dict[str, Path]) -> Dict[str, Any]:
    spec = DATASETS[dataset]
    out = args.output / "finetune" / dataset / arm / f"seed{seed}"
    results = out / "results.json"
    done = srsly.read_json(results)["budget"] if results.exists() else {}
    if (done.get("steps"), done.get("batch_words")) != (args.finetune_steps, args.finetune_batch_words):
        run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "accuracy.py"),
                spec["task"],
                "--train",
                str(paths["train"]),
                "--dev",
                str(paths["dev"]),
                "--encoder",
                encoder,
                "--output",
                str(out),
                "--steps",
                str(args.finetune_steps),
                "--seed",
                str(seed),
                "--eval-frequency",
                str(args.eval_frequency or max(1, args.finetune_steps // 4)),
                "--batch-words",
                str(args.finetune_batch_words),
                "--systems",
                "spanbert",
            ],
            args.output / "log.txt",
        )
    system = srsly.read_json(results)["systems"]["spanbert"]
    return {"f": system["dev"][spec["metric"]], "train_seconds": system["train_seconds"]}


def summary(values: List[float]) -> Dict[str, Optional[float]]:
    return {
        "mean": statistics.mean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "n": len(values),
    }


# ---------------------------------------------------------------- throughput


def throughput(args, train: Path) -> Dict[str, Any]:
    """Word pieces per second of this package's loop and of a plain Hugging
    Face masked-LM loop, same encoder, batch and sequence length, in
    alternating rounds."""
    import numpy
    import torch
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    from spacy_spanbert.commands.pretrain import (
        Masker,
        SpanBertPretrainer,
        load_tokenizer,
        make_optimizer,
        pack_blocks,
        read_texts,
        tokenize_texts,
    )

    tokenizer = load_tokenizer(args.encoder)
    texts = [text for text, _ in read_texts(train)]
    masker_span = Masker(tokenizer, masking="span")
    blocks = pack_blocks(tokenize_texts(texts, tokenizer), args.seq_len - masker_span.n_special)
    batch_size = args.pretrain_batch_size
    full = [b for b in blocks if len(b) == args.seq_len - masker_span.n_special]
    rounds, per_round = 4, max(1, args.throughput_steps // 4)

    def descend(model, optimizer, scheduler, loss) -> None:
        """One optimizer step on `loss`, the same in both loops."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()

    def ours(masking: str):
        torch.manual_seed(0)
        masker = Masker(tokenizer, masking=masking)
        learner = SpanBertPretrainer(
            AutoModelForMaskedLM.from_pretrained(args.encoder),
            sbo_weight=1.0 if masking == "span" else 0.0,
            max_offset=args.seq_len,
        )
        learner.train()
        optimizer, scheduler = make_optimizer(learner, 1e-5, 10_000, 1)
        state = {"step": 0}

        def step() -> int:
            i = state["step"]
            state["step"] += 1
            rng = numpy.random.default_rng([0, i])
            chosen = [full[(i * batch_size + j) % len(full)] for j in range(batch_size)]
            batch = masker.batch(chosen, rng)
            descend(learner, optimizer, scheduler, learner(batch)[0])
            return int(batch["attention_mask"].sum())

        return step

    def hugging_face():
        torch.manual_seed(0)
        model = AutoModelForMaskedLM.from_pretrained(args.encoder)
        model.train()
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15, return_tensors="pt")
        optimizer, scheduler = make_optimizer(model, 1e-5, 10_000, 1)
        examples = [{"input_ids": tokenizer.build_inputs_with_special_tokens(b.ids.tolist())} for b in full]
        state = {"step": 0}

        def step() -> int:
            i = state["step"]
            state["step"] += 1
            batch = collator([examples[(i * batch_size + j) % len(examples)] for j in range(batch_size)])
            descend(model, optimizer, scheduler, model(**batch).loss)
            return int(batch["attention_mask"].sum())

        return step

    loops = {"hf_mlm": hugging_face(), "ours_span_sbo": ours("span"), "ours_random": ours("random")}
    for step in loops.values():  # warm-up: first steps allocate
        step()
    tokens = dict.fromkeys(loops, 0)
    seconds = dict.fromkeys(loops, 0.0)
    for _ in range(rounds):
        for name, step in loops.items():
            started = time.perf_counter()
            for _ in range(per_round):
                tokens[name] += step()
            seconds[name] += time.perf_counter() - started
    speed = {name: tokens[name] / seconds[name] for name in loops}
    return {
        "encoder": args.encoder,
        "batch_size": batch_size,
        "seq_len": args.seq_len,
        "steps_each": rounds * per_round,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "tokens_per_second": {k: round(v, 1) for k, v in speed.items()},
        "ratio_to_hf": {k: round(v / speed["hf_mlm"], 3) for k, v in speed.items() if k != "hf_mlm"},
    }


# ---------------------------------------------------------------- main


def fmt(value: Optional[float], scale: float = 100.0) -> str:
    return "-" if value is None else f"{value * scale:.2f}"


def tables(results: Dict[str, Any]) -> str:
    lines = []
    for dataset, res in results["datasets"].items():
        budget = res["budget"]
        lines += [
            f"\n#### {dataset} ({DATASETS[dataset]['task']}, dev F, pretraining {budget['pretrain_steps']} steps x "
            f"{budget['pretrain_batch_size']} x {budget['seq_len']} pieces, {budget['finetune_steps']} fine-tuning "
            f"steps, seeds {', '.join(map(str, budget['seeds']))})\n",
            "| arm | mean F | std | min-max | delta vs none | pretraining (s) | tokens seen | held-out MLM loss before -> after |",
            "|---|---|---|---|---|---|---|---|",
        ]
        base = res["arms"].get("none", {}).get("f", {}).get("mean")
        for arm, row in res["arms"].items():
            f = row["f"]
            delta = "-" if base is None or f["mean"] is None or arm == "none" else f"{(f['mean'] - base) * 100:+.2f}"
            pre = row.get("pretraining") or {}
            loss = f"{pre['heldout_loss_before']:.3f} -> {pre['heldout_loss_after']:.3f}" if pre else "-"
            lines.append(
                f"| {arm} | {fmt(f['mean'])} | {fmt(f['std'])} | {fmt(f['min'])}-{fmt(f['max'])} | {delta} | "
                f"{pre.get('train_seconds', '-')} | {pre.get('tokens_seen', '-')} | {loss} |"
            )
    if results.get("throughput"):
        t = results["throughput"]
        lines += [
            f"\n#### throughput ({Path(t['encoder']).name}, batch {t['batch_size']} x {t['seq_len']} pieces, "
            f"{t['steps_each']} steps each in {t['rounds']} alternating rounds, {t['torch_threads']} threads)\n",
            "| loop | word pieces / s | ratio to HF |",
            "|---|---|---|",
        ]
        for name, speed in t["tokens_per_second"].items():
            lines.append(f"| {name} | {speed:.0f} | {t['ratio_to_hf'].get(name, 1.0):.3f} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, help="Hugging Face model name or folder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("SPANBERT_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["wnut17", "litbank"])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--pretrain-batch-size", type=int, default=32)
    parser.add_argument("--pretrain-lr", type=float, default=1e-4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--finetune-steps", type=int, default=600)
    parser.add_argument("--eval-frequency", type=int, default=0, help="fine-tuning; default: steps / 4")
    parser.add_argument("--finetune-batch-words", type=int, default=1000, help="accuracy.py --batch-words")
    parser.add_argument("--throughput-steps", type=int, default=24, help="measured steps per loop")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--only-throughput", action="store_true")
    args = parser.parse_args(argv)
    for dataset in args.datasets:
        if not (args.data / dataset).is_dir():
            parser.error(f"--data {args.data}: no {dataset}/ folder (see ../shared/data/README.md)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "results.json"
    results = srsly.read_json(path) if path.exists() else {}
    # Each dataset keeps the budget it was run with, so one results file can
    # gather runs made with different budgets (one invocation per dataset).
    budget = {
        "pretrain_steps": args.pretrain_steps,
        "pretrain_batch_size": args.pretrain_batch_size,
        "seq_len": args.seq_len,
        "pretrain_lr": args.pretrain_lr,
        "finetune_steps": args.finetune_steps,
        "finetune_batch_words": args.finetune_batch_words,
        "seeds": args.seeds,
        "eval_frequency": args.eval_frequency or max(1, args.finetune_steps // 4),
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }
    for stale in ("budget", "torch_threads_env"):  # top-level keys of older results files
        results.pop(stale, None)
    results.update(
        {
            "encoder": args.encoder,
            "machine": {"cpus": os.cpu_count()},
        }
    )
    results.setdefault("datasets", {})
    if not args.only_throughput:
        for dataset in args.datasets:
            paths = convert(args, dataset)
            entry = {
                "task": DATASETS[dataset]["task"],
                "metric": DATASETS[dataset]["metric"],
                "budget": budget,
                "arms": {},
            }
            for arm in args.arms:
                row: Dict[str, Any] = {}
                encoder = args.encoder
                if arm != "none":
                    row["pretraining"] = pretrain_arm(args, dataset, arm, paths["train"])
                    encoder = row["pretraining"]["path"]
                runs = {seed: finetune(args, dataset, arm, seed, encoder, paths) for seed in args.seeds}
                row["seeds"] = runs
                row["f"] = summary([r["f"] for r in runs.values()])
                entry["arms"][arm] = row
                results["datasets"][dataset] = entry
                srsly.write_json(path, results)
    if not args.no_throughput:
        train = convert(args, args.datasets[0])["train"]
        results["throughput"] = throughput(args, train)
        srsly.write_json(path, results)
    print(tables(results))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
