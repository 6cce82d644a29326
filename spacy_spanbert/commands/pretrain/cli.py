"""`spacy spanbert pretrain TEXTS OUTPUT_DIR --model NAME_OR_PATH`: the typer
shell over `loop.pretrain`.

    python -m spacy spanbert pretrain TEXTS OUTPUT_DIR --model NAME_OR_PATH
        [--max-steps 1000] [--seq-len 128] [--batch-size 32] [--lr 1e-4]
        [--sbo-weight 1.0] [--masking span|random] [--seed 0] [--gpu-id -1]
        [--heldout-share 0.05] [--warmup-steps N] [--head-steps N] [--save-every 100]

TEXTS is a `.txt` file (one text a line), a `.jsonl` file (a "text" field a
line), a gzip of either, a `.spacy` DocBin or a folder of those. OUTPUT_DIR
becomes a Hugging Face folder (encoder weights + tokenizer) to use as the
transformer `name` of a spaCy config, plus `pretrain_meta.json`.
OUTPUT_DIR/checkpoint holds the state of the last saved step; running the
same command again resumes there.
"""

from pathlib import Path
from typing import Optional

import typer
from spacy.cli._util import Arg, Opt
from wasabi import msg

from ..app import spanbert_cli
from .loop import pretrain


@spanbert_cli.command("pretrain")
def pretrain_cli(
    ctx: typer.Context,
    texts: Path = Arg(
        ...,
        help="A .txt (one text a line) or .jsonl ('text' field) file, a gzip of either, a .spacy file, or a folder of them",
    ),
    output_dir: Path = Arg(
        ..., help="Output folder: Hugging Face encoder + tokenizer, pretrain_meta.json, checkpoint/"
    ),
    model: str = Opt(..., "--model", "-m", help="Hugging Face model name or folder to continue pretraining"),
    max_steps: int = Opt(1000, "--max-steps", help="Optimizer steps"),
    seq_len: int = Opt(128, "--seq-len", help="Word pieces per sequence, special tokens included"),
    batch_size: int = Opt(32, "--batch-size", help="Sequences per step"),
    lr: float = Opt(1e-4, "--lr", help="Peak learning rate (linear warm-up and decay)"),
    sbo_weight: Optional[float] = Opt(
        None,
        "--sbo-weight",
        help="Weight of the span boundary objective (default 1.0 with span masking, 0 with random)",
    ),
    masking: str = Opt("span", "--masking", help="span (SpanBERT) or random (BERT's single pieces)"),
    seed: int = Opt(0, "--seed", help="Seed of masking, data order and initialisation"),
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU"),
    heldout_share: float = Opt(
        0.05, "--heldout-share", help="Share of the texts (the last ones) held out for the loss"
    ),
    warmup_steps: Optional[int] = Opt(None, "--warmup-steps", help="Warm-up steps (default: a tenth of --max-steps)"),
    head_steps: Optional[int] = Opt(
        None,
        "--head-steps",
        help="First steps that train only the heads (default: the warm-up steps when a head starts untrained, else 0)",
    ),
    save_every: int = Opt(100, "--save-every", help="Steps between checkpoints"),
):
    """Continue pretraining a transformer on unlabeled text with SpanBERT's
    span masking and span boundary objective; the output folder is a
    transformer `name` for spaCy configs. Rerun the same command to resume."""
    try:
        # every argument and option of this command is the `pretrain` argument of the same name
        meta = pretrain(**ctx.params)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    before, after = meta["heldout_loss_before"], meta["heldout_loss_after"]
    msg.good(f"held-out masked-LM loss {before:.3f} -> {after:.3f}; wrote {output_dir}")
