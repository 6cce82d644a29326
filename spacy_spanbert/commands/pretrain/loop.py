"""The engine of `spacy spanbert pretrain`: `pretrain(...)` continues
pretraining a transformer on TEXTS and writes a Hugging Face folder (encoder
+ tokenizer) and pretrain_meta.json. It saves a checkpoint every
`save_every` steps and resumes from OUTPUT_DIR/checkpoint when that holds a
run of the same settings; batches and masks are a function of the seed and
the step, so a resumed run ends as an uninterrupted one would.
"""

import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
from tqdm import tqdm
from wasabi import msg

from ...errors import Errors, Warnings, check_positive
from .checkpoint import Progress, checkpoint_path, read_checkpoint, restore_checkpoint, write_checkpoint
from .data import Block, load_tokenizer, pack_blocks, read_texts, split_heldout, tokenize_texts
from .masking import GEOMETRIC_P, MASK_RATIO, MAX_SPAN_WORDS, Masker, check_masking
from .model import SpanBertPretrainer, load_encoder, save_encoder

META_FILE = "pretrain_meta.json"
# held-out loss: at most this many sequences, so evaluating stays cheap on big TEXTS
MAX_HELDOUT_BLOCKS = 256
WHERE = "spanbert pretrain"


@dataclass
class Corpus:
    """The training and held-out blocks, and how many texts each came from."""

    train_blocks: List[Block]
    held_blocks: List[Block]
    n_train_texts: int
    n_held_texts: int


@dataclass
class Run:
    """Everything a run builds before its first step."""

    settings: Dict[str, Any]
    tokenizer: Any
    masker: Masker
    corpus: Corpus
    learner: SpanBertPretrainer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    fresh_head: bool


def make_optimizer(model: torch.nn.Module, lr: float, max_steps: int, warmup_steps: int):
    """AdamW (weight decay 0.01, none on biases and LayerNorms) with a linear
    warm-up to `lr` and a linear decay to 0 at `max_steps`.

    model (torch.nn.Module): The module to train.
    lr (float): The peak learning rate.
    max_steps (int): The last step.
    warmup_steps (int): The steps of the warm-up.
    RETURNS (Tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]): The
        optimizer and its schedule.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim < 2 else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def to_device(batch: Dict[str, torch.Tensor], device: torch.device) -> Dict[str, torch.Tensor]:
    """The tensors of a batch, moved to `device`."""
    return {key: value.to(device) for key, value in batch.items()}


def heldout_loss(
    model: SpanBertPretrainer,
    masker: Masker,
    blocks: Sequence[Block],
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> float:
    """Masked-LM loss per masked piece on `blocks`, with masks drawn from
    `seed` (the same masks before and after training).

    model (SpanBertPretrainer): The pretrainer.
    masker (Masker): Its masker.
    blocks (Sequence[Block]): The held-out blocks.
    batch_size (int): Blocks per batch.
    seed (int): The seed of the masks.
    device (torch.device): The model's device.
    RETURNS (float): The mean loss.
    """
    rng = numpy.random.default_rng([seed, 2**31 - 1])
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = to_device(masker.batch(blocks[start : start + batch_size], rng), device)
            n = len(batch["target"])
            if n:
                total += float(model(batch)[1]) * n
                count += n
    model.train()
    return total / max(count, 1)


def batch_indices(step: int, n_blocks: int, batch_size: int, seed: int) -> numpy.ndarray:
    """The training blocks of `step`: epochs of shuffled blocks, cut into
    full batches; a function of the step alone, so a resumed run sees the
    same batches.

    step (int): The step (0-based).
    n_blocks (int): The number of training blocks.
    batch_size (int): Blocks per batch.
    seed (int): The seed of the shuffles.
    RETURNS (numpy.ndarray): The indices of the step's blocks.
    """
    per_epoch = max(1, n_blocks // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = numpy.random.default_rng([seed, epoch]).permutation(n_blocks)
    return order[k * batch_size : (k + 1) * batch_size]


def make_settings(
    texts: Path,
    *,
    model: str,
    max_steps: int,
    seq_len: int,
    batch_size: int,
    lr: float,
    sbo_weight: Optional[float],
    masking: str,
    seed: int,
    heldout_share: float,
    warmup_steps: Optional[int],
    head_steps: Optional[int],
    save_every: int,
) -> Dict[str, Any]:
    """Check the options of `pretrain` and fill in their defaults (all but
    head_steps, which `build_run` resolves once it knows the encoder).
    `save_every` is checked but not a setting: a run may be resumed with
    another.

    texts (Path): TEXTS; the other arguments are the options of `pretrain`.
    RETURNS (Dict[str, Any]): The settings, as saved in checkpoints and meta.
    """
    check_masking(masking)
    if sbo_weight is None:
        sbo_weight = 1.0 if masking == "span" else 0.0
    for option, value in (("--max-steps", max_steps), ("--batch-size", batch_size), ("--save-every", save_every)):
        check_positive(WHERE, option, value)
    for option, value in (("--warmup-steps", warmup_steps), ("--head-steps", head_steps)):
        if value is not None:
            check_positive(WHERE, option, value, allow_zero=True)
    if sbo_weight < 0 or lr <= 0:
        raise ValueError(Errors.E310.format(lr=lr, sbo_weight=sbo_weight))
    span_length = f"Geometric({GEOMETRIC_P}) truncated at {MAX_SPAN_WORDS} words"
    return {
        "model": str(model),
        "texts": str(Path(texts).resolve()),
        "max_steps": max_steps,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": max(1, max_steps // 10) if warmup_steps is None else warmup_steps,
        "sbo_weight": sbo_weight,
        "masking": masking,
        "mask_ratio": MASK_RATIO,
        "span_length": span_length if masking == "span" else "1 piece",
        "seed": seed,
        "heldout_share": heldout_share,
        "head_steps": head_steps,
    }


def load_corpus(texts: Path, tokenizer, masker: Masker, settings: Dict[str, Any]) -> Corpus:
    """Read TEXTS, split off the held-out texts and pack both slices into
    blocks of one sequence; a ValueError when a slice is too small to mask.

    texts (Path): TEXTS.
    tokenizer (PreTrainedTokenizerFast): The encoder's tokenizer.
    masker (Masker): The masker.
    settings (Dict[str, Any]): The run's settings.
    RETURNS (Corpus): The blocks.
    """
    seq_len, model = settings["seq_len"], settings["model"]
    capacity = seq_len - masker.n_special
    max_len = getattr(tokenizer, "model_max_length", None) or seq_len
    if capacity < 3 or seq_len > max_len:
        raise ValueError(Errors.E311.format(seq_len=seq_len, low=masker.n_special + 3, high=max_len, model=model))
    all_texts = [text for text, _ in read_texts(texts)]
    train_texts, held_texts = split_heldout(all_texts, settings["heldout_share"], texts)
    corpus = Corpus(
        train_blocks=pack_blocks(tokenize_texts(train_texts, tokenizer), capacity),
        held_blocks=pack_blocks(tokenize_texts(held_texts, tokenizer), capacity)[:MAX_HELDOUT_BLOCKS],
        n_train_texts=len(train_texts),
        n_held_texts=len(held_texts),
    )
    for name, blocks, n_texts in (
        ("training", corpus.train_blocks, corpus.n_train_texts),
        ("held-out", corpus.held_blocks, corpus.n_held_texts),
    ):
        if not masker.masks_any(blocks):
            n_pieces = sum(len(block) for block in blocks)
            raise ValueError(Errors.E314.format(path=texts, slice=name, n_texts=n_texts, n_pieces=n_pieces))
    return corpus


def build_run(texts: Path, settings: Dict[str, Any], device: torch.device) -> Run:
    """Load the tokenizer, TEXTS and the encoder, and build the pretrainer and
    its optimizer; resolves settings["head_steps"].

    texts (Path): TEXTS.
    settings (Dict[str, Any]): From `make_settings`.
    device (torch.device): Where to train.
    RETURNS (Run): The run, before its first step.
    """
    model = settings["model"]
    torch.manual_seed(settings["seed"])
    tokenizer = load_tokenizer(model)
    masker = Masker(tokenizer, masking=settings["masking"])
    corpus = load_corpus(texts, tokenizer, masker, settings)
    mlm_model, fresh_head = load_encoder(model)
    head_steps = settings["head_steps"]
    if head_steps is None:
        head_steps = settings["warmup_steps"] if (fresh_head or settings["sbo_weight"] > 0) else 0
    settings["head_steps"] = min(head_steps, settings["max_steps"])
    if fresh_head:
        warnings.warn(Warnings.W300.format(model=model), stacklevel=3)
    learner = SpanBertPretrainer(mlm_model, sbo_weight=settings["sbo_weight"], max_offset=settings["seq_len"])
    learner = learner.to(device)
    optimizer, scheduler = make_optimizer(learner, settings["lr"], settings["max_steps"], settings["warmup_steps"])
    return Run(settings, tokenizer, masker, corpus, learner, optimizer, scheduler, device, fresh_head)


def start_or_resume(run: Run, checkpoint: Path) -> Progress:
    """The progress of a new run (with its held-out loss before training), or
    of the run saved in `checkpoint`, loaded into `run`.

    run (Run): The run.
    checkpoint (Path): The checkpoint file, if it exists.
    RETURNS (Progress): Where training starts.
    """
    if not checkpoint.exists():
        return Progress(heldout_loss_before=run_heldout_loss(run))
    config, tensors = read_checkpoint(checkpoint, run.settings)
    progress = restore_checkpoint(
        checkpoint, config, tensors, learner=run.learner, optimizer=run.optimizer, scheduler=run.scheduler
    )
    msg.info(f"resuming from {checkpoint} at step {progress.step}")
    return progress


def run_heldout_loss(run: Run) -> float:
    """The masked-LM loss of the run's model on its held-out blocks."""
    settings = run.settings
    return heldout_loss(
        run.learner,
        run.masker,
        run.corpus.held_blocks,
        batch_size=settings["batch_size"],
        seed=settings["seed"],
        device=run.device,
    )


def train_step(run: Run, step: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """One optimizer step on the batch of `step`.

    run (Run): The run.
    step (int): The step (0-based).
    RETURNS (Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]): The loss,
        the masked-LM and SBO losses (detached) and the pieces of the batch.
    """
    seed, blocks = run.settings["seed"], run.corpus.train_blocks
    rng = numpy.random.default_rng([seed, step])
    chosen = [blocks[i] for i in batch_indices(step, len(blocks), run.settings["batch_size"], seed)]
    batch = to_device(run.masker.batch(chosen, rng), run.device)
    run.learner.frozen_encoder = step < run.settings["head_steps"]
    loss, mlm_loss, sbo_loss = run.learner(batch)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.learner.parameters(), 1.0)
    run.optimizer.step()
    run.scheduler.step()
    return loss.detach(), mlm_loss, sbo_loss, int(batch["attention_mask"].sum())


def train(run: Run, progress: Progress, *, checkpoint: Path, save_every: int, show_progress: bool) -> None:
    """Train until settings["max_steps"], writing a checkpoint every
    `save_every` steps and after the last one.

    run (Run): The run.
    progress (Progress): Where training starts; updated in place.
    checkpoint (Path): The checkpoint file.
    save_every (int): Steps between checkpoints.
    show_progress (bool): Whether to show a progress bar on stderr.
    """
    max_steps = run.settings["max_steps"]
    run.learner.train()
    bar = tqdm(
        total=max_steps,
        initial=progress.step,
        desc="pretrain",
        unit="step",
        disable=not show_progress,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    while progress.step < max_steps:
        started = time.perf_counter()
        loss, mlm_loss, sbo_loss, n_pieces = train_step(run, progress.step)
        progress.step += 1
        progress.tokens_seen += n_pieces
        progress.seconds += time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(
            loss=f"{float(loss):.3f}",
            mlm=f"{float(mlm_loss):.3f}",
            sbo=f"{float(sbo_loss):.3f}",
            tok_s=f"{progress.tokens_seen / progress.seconds:.0f}",
        )
        if progress.step % save_every == 0 or progress.step == max_steps:
            write_checkpoint(
                checkpoint,
                settings=run.settings,
                progress=progress,
                learner=run.learner,
                optimizer=run.optimizer,
                scheduler=run.scheduler,
            )
    bar.close()


def make_meta(run: Run, progress: Progress, after: float) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): The contents of pretrain_meta.json."""
    corpus = run.corpus
    return {
        "settings": run.settings,
        "steps": progress.step,
        "tokens_seen": progress.tokens_seen,
        "train_seconds": round(progress.seconds, 2),
        "tokens_per_second": round(progress.tokens_seen / max(progress.seconds, 1e-9), 1),
        "fresh_mlm_head": run.fresh_head,
        "texts": {
            "train": corpus.n_train_texts,
            "heldout": corpus.n_held_texts,
            "train_blocks": len(corpus.train_blocks),
            "heldout_blocks": len(corpus.held_blocks),
        },
        "heldout_loss_before": round(progress.heldout_loss_before, 4),
        "heldout_loss_after": round(after, 4),
        "versions": versions(),
    }


def versions() -> Dict[str, str]:
    """RETURNS (Dict[str, str]): The versions of Python and the packages a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("spacy-spanbert", "spacy", "spacy-transformers", "transformers", "torch"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def pretrain(
    texts: Path,
    output_dir: Path,
    *,
    model: str,
    max_steps: int = 1000,
    seq_len: int = 128,
    batch_size: int = 32,
    lr: float = 1e-4,
    sbo_weight: Optional[float] = None,
    masking: str = "span",
    seed: int = 0,
    gpu_id: int = -1,
    heldout_share: float = 0.05,
    warmup_steps: Optional[int] = None,
    head_steps: Optional[int] = None,
    save_every: int = 100,
    progress: bool = True,
) -> Dict[str, Any]:
    """Continue pretraining `model` on TEXTS and write a Hugging Face folder
    (encoder + tokenizer) and pretrain_meta.json to `output_dir`. Resumes from
    output_dir/checkpoint when it holds a run of the same settings.

    texts (Path): A .txt / .jsonl file (or a gzip of one), a .spacy file or a
        folder of them.
    output_dir (Path): The output folder.
    model (str): A Hugging Face model name or folder.
    max_steps (int): Optimizer steps.
    seq_len (int): Word pieces per sequence, special tokens included.
    batch_size (int): Sequences per step.
    lr (float): The peak learning rate.
    sbo_weight (Optional[float]): Weight of the SBO loss; default 1.0 with
        span masking and 0 (no SBO head) with random masking.
    masking (str): "span" (SpanBERT) or "random" (BERT's single pieces).
    seed (int): Seed of masking, data order and initialisation.
    gpu_id (int): GPU id, or -1 for the CPU.
    heldout_share (float): Share of the texts (the last ones) held out.
    warmup_steps (Optional[int]): Steps of linear warm-up; default a tenth
        of `max_steps`.
    head_steps (Optional[int]): First steps that train only the heads (the
        encoder runs without gradients; the word embeddings still learn as
        the tied decoder); default `warmup_steps` when a head starts
        untrained (a fresh MLM head, or the SBO head), else 0.
    save_every (int): Steps between checkpoints.
    progress (bool): Whether to show a progress bar.
    RETURNS (Dict[str, Any]): The contents of pretrain_meta.json.
    """
    texts, output_dir = Path(texts), Path(output_dir)
    settings = make_settings(
        texts,
        model=model,
        max_steps=max_steps,
        seq_len=seq_len,
        batch_size=batch_size,
        lr=lr,
        sbo_weight=sbo_weight,
        masking=masking,
        seed=seed,
        heldout_share=heldout_share,
        warmup_steps=warmup_steps,
        head_steps=head_steps,
        save_every=save_every,
    )
    run = build_run(texts, settings, torch.device(f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu"))
    checkpoint = checkpoint_path(output_dir)
    state = start_or_resume(run, checkpoint)
    train(run, state, checkpoint=checkpoint, save_every=save_every, show_progress=progress)
    after = run_heldout_loss(run)
    save_encoder(run.learner.mlm_model, model, run.tokenizer, output_dir)
    meta = make_meta(run, state, after)
    srsly.write_json(output_dir / META_FILE, meta)
    return meta
