"""`spacy spanbert pretrain`: continued pretraining of a transformer on
unlabeled text with SpanBERT's span masking and span boundary objective.

    python -m spacy spanbert pretrain TEXTS OUTPUT_DIR --model NAME_OR_PATH
        [--max-steps 1000] [--seq-len 128] [--batch-size 32] [--lr 1e-4]
        [--sbo-weight 1.0] [--masking span|random] [--seed 0] [--gpu-id -1]
        [--heldout-share 0.05] [--warmup-steps N] [--head-steps N] [--save-every 100]

TEXTS is a `.txt` file (one text a line), a `.jsonl` file (a "text" field a
line), a `.spacy` DocBin or a folder of those. OUTPUT_DIR becomes a Hugging
Face folder (encoder weights + tokenizer) to use as the transformer `name` of
a spaCy config, plus `pretrain_meta.json`. OUTPUT_DIR/checkpoint holds the
state of the last saved step; running the same command again resumes there.

Span masking follows SpanBERT (Joshi et al. 2020): span lengths in words are
drawn from a geometric distribution (p = 0.2) truncated at 10 words (mean 3.8
words, as in the paper), spans cover whole words, 15% of the word pieces of a
sequence are masked, and the 80/10/10 choice (mask / random pieces / keep) is
made once per span. The span boundary objective (SBO) predicts each masked
piece x_i of a span (s, e) from [h_{s-1}; h_{e+1}; p_{i-s+1}] through two
Linear -> GeLU -> LayerNorm layers and the decoder tied to the input
embeddings. Spans never touch the first or last word of a sequence, and two
spans never touch each other, so every boundary is an unmasked piece of text.
"""

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
from spacy.cli._util import Arg, Opt
from torch import nn
from wasabi import msg

from .cli import spanbert_cli

__all__ = [
    "MASKINGS",
    "Block",
    "Masker",
    "SpanBoundaryHead",
    "SpanBertPretrainer",
    "load_encoder",
    "read_texts",
    "tokenize_texts",
    "pack_blocks",
    "span_length_distribution",
    "pretrain",
    "pretrain_cli",
]

MASKINGS = ("span", "random")
TEXT_SUFFIXES = (".txt", ".jsonl", ".spacy")
MASK_RATIO = 0.15
GEOMETRIC_P = 0.2
MAX_SPAN_WORDS = 10
CHECKPOINT_DIR = "checkpoint"
META_FILE = "pretrain_meta.json"
# held-out loss: at most this many sequences, so evaluating stays cheap on big TEXTS
MAX_HELDOUT_BLOCKS = 256
# the settings a checkpoint must share with the command that resumes it
RESUME_KEYS = (
    "model",
    "texts",
    "max_steps",
    "seq_len",
    "batch_size",
    "lr",
    "warmup_steps",
    "head_steps",
    "sbo_weight",
    "masking",
    "seed",
    "heldout_share",
)


# ---------------------------------------------------------------- reading


def read_texts(path: Path) -> Iterator[Tuple[str, str]]:
    """Read the texts of a .txt file (one text a line; blank lines are
    skipped), a .jsonl file (a "text" field a line), a .spacy DocBin or a
    folder of those (recursively, in sorted order).

    path (Path): The file or folder.
    YIELDS (Tuple[str, str]): The text and where it is ("file:line" or "file doc N").
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"spanbert pretrain: TEXTS {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        if not files:
            raise ValueError(
                f"spanbert pretrain: the folder {path} holds no {', '.join(TEXT_SUFFIXES)} files; "
                f"give one text a line (.txt), a 'text' field a line (.jsonl) or a DocBin (.spacy)"
            )
    elif path.suffix not in TEXT_SUFFIXES:
        raise ValueError(
            f"spanbert pretrain: cannot read {path}: TEXTS must end in {', '.join(TEXT_SUFFIXES)} "
            f"or be a folder of such files"
        )
    else:
        files = [path]
    for file in files:
        n_texts = 0
        reader = _read_docbin if file.suffix == ".spacy" else _read_lines
        for text, where in reader(file):
            n_texts += 1
            yield text, where
        if n_texts == 0:
            raise ValueError(f"spanbert pretrain: {file} holds no text; remove it or fill it")


def _read_lines(file: Path) -> Iterator[Tuple[str, str]]:
    with file.open("rb") as stream:
        for i, raw in enumerate(stream, 1):
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"spanbert pretrain: {file}:{i}: not UTF-8 ({err.reason} at byte {err.start} "
                    f"of the line); re-encode the file as UTF-8"
                ) from None
            if file.suffix == ".txt":
                if line.strip():
                    yield line.strip(), f"{file}:{i}"
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"spanbert pretrain: {file}:{i}: not a JSON object ({err.msg})") from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"spanbert pretrain: {file}:{i}: no text; each line of a .jsonl file needs a "
                    f"non-empty string field 'text'"
                )
            yield text.strip(), f"{file}:{i}"


def _read_docbin(file: Path) -> Iterator[Tuple[str, str]]:
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    try:
        docbin = DocBin().from_disk(file)
    except Exception as err:  # msgpack / zlib errors of a file that is not a DocBin
        raise ValueError(
            f"spanbert pretrain: cannot read {file} as a spaCy DocBin ({type(err).__name__}: {err})"
        ) from None
    for i, doc in enumerate(docbin.get_docs(Vocab())):
        if doc.text.strip():
            yield doc.text, f"{file} doc {i}"


# ---------------------------------------------------------------- word pieces


@dataclass
class Block:
    """One training sequence before special tokens: its word-piece ids and,
    per piece, the index of its word within the block."""

    ids: numpy.ndarray
    words: numpy.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def load_tokenizer(name: str):
    """A fast tokenizer for `name` that reports word boundaries. Raises
    ValueError for a tokenizer without them or without a mask token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    if not tokenizer.is_fast:
        raise ValueError(
            f"spanbert pretrain: the tokenizer of {name} is a slow (Python) tokenizer, which does "
            f"not report word boundaries; span masking needs a fast tokenizer (tokenizer.json, "
            f"word_ids()). Save the model with a fast tokenizer or use --masking random."
        )
    if tokenizer.mask_token_id is None:
        raise ValueError(f"spanbert pretrain: the tokenizer of {name} has no mask token; it cannot train a masked LM")
    probe = "four words in here"
    words = tokenizer(probe, add_special_tokens=False).word_ids()
    if any(w is None for w in words) or len(set(words)) != len(probe.split()):
        raise ValueError(
            f"spanbert pretrain: the tokenizer of {name} has no usable word boundaries "
            f"({probe!r} gave word ids {words}); span masking needs a tokenizer whose word_ids() "
            f"splits text into words. Use --masking random for piece-level masking."
        )
    return tokenizer


def tokenize_texts(texts: Sequence[str], tokenizer, batch_size: int = 1000) -> List[List[List[int]]]:
    """Word pieces of each text, grouped by word.

    RETURNS (List[List[List[int]]]): per text, per word, the piece ids.
    """
    out: List[List[List[int]]] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        encoded = tokenizer(batch, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)
        for i, ids in enumerate(encoded["input_ids"]):
            words: List[List[int]] = []
            previous = None
            for piece, word in zip(ids, encoded.word_ids(i)):
                if word is None or word != previous:
                    words.append([])
                words[-1].append(piece)
                previous = word
            out.append(words)
    return out


def pack_blocks(texts: Sequence[List[List[int]]], capacity: int) -> List[Block]:
    """Concatenate the words of the texts and cut them into blocks of at most
    `capacity` pieces, at word boundaries (a longer word is cut to fit)."""
    blocks: List[Block] = []
    ids: List[int] = []
    words: List[int] = []
    n_words = 0

    def flush():
        nonlocal ids, words, n_words
        if ids:
            blocks.append(Block(numpy.asarray(ids, dtype="int64"), numpy.asarray(words, dtype="int32")))
        ids, words, n_words = [], [], 0

    for text in texts:
        for word in text:
            if len(ids) + len(word) > capacity:
                flush()
            word = word[:capacity]
            ids.extend(word)
            words.extend([n_words] * len(word))
            n_words += 1
    flush()
    return blocks


# ---------------------------------------------------------------- masking


def span_length_distribution(p: float = GEOMETRIC_P, max_words: int = MAX_SPAN_WORDS) -> numpy.ndarray:
    """P(length = 1..max_words) of a geometric distribution truncated at
    `max_words` and renormalised, as SpanBERT samples span lengths."""
    lengths = numpy.arange(1, max_words + 1)
    probs = p * (1 - p) ** (lengths - 1)
    return probs / probs.sum()


class Masker:
    """Chooses the masked spans of a block and builds padded batches.

    tokenizer: The encoder's fast tokenizer.
    masking (str): "span" (SpanBERT) or "random" (BERT: single pieces).
    ratio (float): The share of word pieces to mask.
    """

    def __init__(
        self,
        tokenizer,
        *,
        masking: str = "span",
        ratio: float = MASK_RATIO,
        p: float = GEOMETRIC_P,
        max_words: int = MAX_SPAN_WORDS,
    ):
        if masking not in MASKINGS:
            raise ValueError(f"spanbert pretrain: --masking {masking!r}: expected one of {', '.join(MASKINGS)}")
        self.masking = masking
        self.ratio = ratio
        self.lengths = numpy.arange(1, max_words + 1)
        self.length_probs = span_length_distribution(p, max_words)
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        specials = set(tokenizer.all_special_ids)
        self.random_pool = numpy.asarray([i for i in range(len(tokenizer)) if i not in specials], dtype="int64")
        marker = self.random_pool[0]
        framed = tokenizer.build_inputs_with_special_tokens([int(marker)])
        at = framed.index(marker)
        self.prefix = list(framed[:at])
        self.suffix = list(framed[at + 1 :])

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def sample_spans(
        self, words: numpy.ndarray, rng: numpy.random.Generator, target: Optional[float] = None
    ) -> List[Tuple[int, int]]:
        """The masked spans of one block, as sorted (start, end) piece offsets
        (end exclusive). Spans are drawn until `target` pieces (default:
        `ratio` of the block) are masked; the last span is kept whole, and
        `batch` carries the excess over to the next block, so a batch masks
        `ratio` of its pieces while span lengths keep their distribution.

        Span masking: a length in words from the truncated geometric
        distribution, then a position for it among the inner words (not the
        block's first or last word) that keeps one unmasked piece between
        spans. Random masking: single pieces of the inner words.
        """
        n = len(words)
        if target is None:
            target = self.ratio * n
        starts = numpy.flatnonzero(numpy.r_[True, words[1:] != words[:-1]]) if n else numpy.zeros(0, "int64")
        ends = numpy.r_[starts[1:], n]
        n_inner = len(starts) - 2
        if n_inner < 1 or target < 0.5:
            return []
        masked = numpy.zeros(n + 1, dtype=bool)
        spans: List[Tuple[int, int]] = []
        total = 0
        for _ in range(int(10 * target) + 10):
            if total >= target - 0.5:
                break
            if self.masking == "random":
                s = int(rng.integers(starts[1], ends[n_inner]))
                if not masked[s]:
                    masked[s] = True
                    spans.append((s, s + 1))
                    total += 1
                continue
            length = min(int(rng.choice(self.lengths, p=self.length_probs)), n_inner)
            # a new position (not a new length) when the span collides, so
            # long spans are not under-represented
            for first in rng.integers(1, n_inner - length + 2, size=10):
                s, e = int(starts[first]), int(ends[first + length - 1])
                if not masked[s - 1 : e + 1].any():
                    masked[s:e] = True
                    spans.append((s, e))
                    total += e - s
                    break
        return sorted(spans)

    def batch(self, blocks: Sequence[Block], rng: numpy.random.Generator) -> Dict[str, torch.Tensor]:
        """Mask the blocks and pad them into one batch.

        RETURNS (Dict[str, torch.Tensor]): input_ids and attention_mask
            (batch, length); for each masked piece, its `row`, `position`,
            `target` id, span boundaries `left` / `right` and `offset` in the span.
        """
        length = max(len(b) for b in blocks) + self.n_special
        input_ids = numpy.full((len(blocks), length), self.pad_id, dtype="int64")
        attention = numpy.zeros((len(blocks), length), dtype="int64")
        rows, positions, targets, lefts, rights, offsets = [], [], [], [], [], []
        k = len(self.prefix)
        excess = 0.0
        for row, block in enumerate(blocks):
            ids = block.ids.copy()
            target = self.ratio * len(block) - excess
            spans = self.sample_spans(block.words, rng, target)
            excess = sum(e - s for s, e in spans) - target
            for s, e in spans:
                choice = rng.random()
                if choice < 0.8:
                    ids[s:e] = self.mask_id
                elif choice < 0.9:
                    ids[s:e] = self.random_pool[rng.integers(0, len(self.random_pool), e - s)]
                span = numpy.arange(s, e)
                rows.append(numpy.full(e - s, row))
                positions.append(span + k)
                targets.append(block.ids[s:e])
                lefts.append(numpy.full(e - s, s - 1 + k))
                rights.append(numpy.full(e - s, e + k))
                offsets.append(span - s)
            sequence = numpy.concatenate([self.prefix, ids, self.suffix])
            input_ids[row, : len(sequence)] = sequence
            attention[row, : len(sequence)] = 1

        def cat(parts):
            return torch.from_numpy(numpy.concatenate(parts).astype("int64") if parts else numpy.zeros(0, "int64"))

        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "row": cat(rows),
            "position": cat(positions),
            "target": cat(targets),
            "left": cat(lefts),
            "right": cat(rights),
            "offset": cat(offsets),
        }


# ---------------------------------------------------------------- model


class SpanBoundaryHead(nn.Module):
    """SpanBERT's span boundary objective: predicts a masked piece from the
    states just outside its span and its position in the span, through two
    Linear -> GeLU -> LayerNorm layers and a decoder whose weights are the
    encoder's input embeddings (passed to `forward`, so they stay tied).

    width (int): The encoder's hidden width.
    vocab_size (int): The number of word pieces.
    max_offset (int): The number of relative positions (the longest span).
    """

    def __init__(self, width: int, vocab_size: int, max_offset: int, eps: float = 1e-12):
        super().__init__()
        self.positions = nn.Embedding(max_offset, width)
        self.layers = nn.Sequential(
            nn.Linear(3 * width, width),
            nn.GELU(),
            nn.LayerNorm(width, eps=eps),
            nn.Linear(width, width),
            nn.GELU(),
            nn.LayerNorm(width, eps=eps),
        )
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.positions.weight, std=0.02)

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, offset: torch.Tensor, decoder: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.layers(torch.cat([left, right, self.positions(offset)], dim=-1))
        return nn.functional.linear(hidden, decoder, self.bias)


def mlm_head(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The masked-LM head of a Hugging Face `...ForMaskedLM` model, as a
    function of hidden states. Raises ValueError for an unknown layout."""
    if hasattr(model, "cls"):  # BERT
        return model.cls
    if hasattr(model, "lm_head"):  # RoBERTa, XLM-R, CamemBERT
        return model.lm_head
    if hasattr(model, "vocab_projector"):  # DistilBERT
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    raise ValueError(
        f"spanbert pretrain: cannot find the masked-LM head of {type(model).__name__}; "
        f"BERT-, RoBERTa- and DistilBERT-style encoders are supported"
    )


class SpanBertPretrainer(nn.Module):
    """An encoder with its masked-LM head and, when sbo_weight > 0, the span
    boundary head. `forward(batch)` returns (loss, mlm_loss, sbo_loss).
    Logits are computed for the masked pieces only."""

    def __init__(self, mlm_model, *, sbo_weight: float, max_offset: int):
        super().__init__()
        self.mlm_model = mlm_model
        mlm_head(mlm_model)  # fails early for an unknown head layout
        self.sbo_weight = sbo_weight
        # while True, the encoder runs without gradients: only the heads learn
        self.frozen_encoder = False
        config = mlm_model.config
        self.sbo = (
            SpanBoundaryHead(
                config.hidden_size, config.vocab_size, max_offset, getattr(config, "layer_norm_eps", 1e-12)
            )
            if sbo_weight > 0
            else None
        )

    def forward(self, batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            hidden = self.mlm_model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        row, target = batch["row"], batch["target"]
        if len(target) == 0:
            zero = hidden.sum() * 0.0
            return zero, zero.detach(), zero.detach()
        logits = mlm_head(self.mlm_model)(hidden[row, batch["position"]])
        mlm_loss = nn.functional.cross_entropy(logits.float(), target)
        if self.sbo is None:
            return mlm_loss, mlm_loss.detach(), torch.zeros(())
        sbo_logits = self.sbo(
            hidden[row, batch["left"]],
            hidden[row, batch["right"]],
            batch["offset"],
            self.mlm_model.get_input_embeddings().weight,
        )
        sbo_loss = nn.functional.cross_entropy(sbo_logits.float(), target)
        return mlm_loss + self.sbo_weight * sbo_loss, mlm_loss.detach(), sbo_loss.detach()


def load_encoder(name: str):
    """`AutoModelForMaskedLM.from_pretrained(name)`, which adds a freshly
    initialised head to an encoder saved without one.

    RETURNS (Tuple[PreTrainedModel, bool]): The model and whether its MLM head is new.
    """
    from transformers import AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing-head warning is reported below, once
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True)
    except ValueError as err:
        raise ValueError(f"spanbert pretrain: {name} has no masked-LM form in transformers ({err})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    base = model.base_model_prefix
    fresh = any(not key.startswith(base + ".") for key in info["missing_keys"])
    return model, fresh


def make_optimizer(model: nn.Module, lr: float, max_steps: int, warmup_steps: int):
    """AdamW (weight decay 0.01, none on biases and LayerNorms) with a linear
    warm-up to `lr` and a linear decay to 0 at `max_steps`."""
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
    `seed` (the same masks before and after training)."""
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
    same batches."""
    per_epoch = max(1, n_blocks // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = numpy.random.default_rng([seed, epoch]).permutation(n_blocks)
    return order[k * batch_size : (k + 1) * batch_size]


# ---------------------------------------------------------------- training


def split_heldout(texts: List[str], share: float, path: Path):
    """The last texts (about `share` of them) as the held-out slice, the rest
    for training. Raises ValueError when TEXTS is too small for both."""
    if not 0 < share < 1:
        raise ValueError(f"spanbert pretrain: --heldout-share {share}: expected a share between 0 and 1")
    n_held = max(1, int(round(share * len(texts))))
    if len(texts) - n_held < 1:
        raise ValueError(
            f"spanbert pretrain: TEXTS {path} holds {len(texts)} text(s): too few to hold out "
            f"{share:.0%} for the held-out loss and train on the rest; give at least "
            f"{math.ceil(2 / share)} texts (or raise --heldout-share)"
        )
    return texts[:-n_held], texts[-n_held:]


def check_blocks(blocks: List[Block], masker: Masker, what: str, path: Path, n_texts: int) -> None:
    if not any(masker.sample_spans(b.words, numpy.random.default_rng(0)) for b in blocks):
        raise ValueError(
            f"spanbert pretrain: TEXTS {path}: the {what} slice ({n_texts} text(s), "
            f"{sum(len(b) for b in blocks)} word pieces) is too small to mask anything; give "
            f"more text (or raise --heldout-share)"
        )


def versions() -> Dict[str, str]:
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

    texts (Path): A .txt / .jsonl / .spacy file or a folder of them.
    output_dir (Path): The output folder.
    model (str): A Hugging Face model name or folder.
    sbo_weight (Optional[float]): Weight of the SBO loss; default 1.0 with
        span masking and 0 (no SBO head) with random masking.
    head_steps (Optional[int]): First steps that train only the heads (the
        encoder runs without gradients; the word embeddings still learn as
        the tied decoder); default `warmup_steps` when a head
        starts untrained (a fresh MLM head, or the SBO head), else 0.
    RETURNS (Dict[str, Any]): The contents of pretrain_meta.json.
    """
    texts, output_dir = Path(texts), Path(output_dir)
    if masking not in MASKINGS:
        raise ValueError(f"spanbert pretrain: --masking {masking!r}: expected one of {', '.join(MASKINGS)}")
    if sbo_weight is None:
        sbo_weight = 1.0 if masking == "span" else 0.0
    for option, value in (("--max-steps", max_steps), ("--batch-size", batch_size), ("--save-every", save_every)):
        if value < 1:
            raise ValueError(f"spanbert pretrain: {option} {value}: expected a positive number")
    if sbo_weight < 0 or lr <= 0:
        raise ValueError("spanbert pretrain: --lr must be positive and --sbo-weight not negative")
    if warmup_steps is None:
        warmup_steps = max(1, max_steps // 10)
    settings = {
        "model": str(model),
        "texts": str(texts.resolve()),
        "max_steps": max_steps,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": warmup_steps,
        "sbo_weight": sbo_weight,
        "masking": masking,
        "mask_ratio": MASK_RATIO,
        "span_length": f"Geometric({GEOMETRIC_P}) truncated at {MAX_SPAN_WORDS} words"
        if masking == "span"
        else "1 piece",
        "seed": seed,
        "heldout_share": heldout_share,
    }
    device = torch.device(f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu")
    torch.manual_seed(seed)

    tokenizer = load_tokenizer(model)
    masker = Masker(tokenizer, masking=masking)
    capacity = seq_len - masker.n_special
    max_len = getattr(tokenizer, "model_max_length", None) or seq_len
    if capacity < 3 or seq_len > max_len:
        raise ValueError(
            f"spanbert pretrain: --seq-len {seq_len}: expected {masker.n_special + 3} to {max_len} for {model}"
        )
    all_texts = [text for text, _ in read_texts(texts)]
    train_texts, held_texts = split_heldout(all_texts, heldout_share, texts)
    train_blocks = pack_blocks(tokenize_texts(train_texts, tokenizer), capacity)
    held_blocks = pack_blocks(tokenize_texts(held_texts, tokenizer), capacity)[:MAX_HELDOUT_BLOCKS]
    check_blocks(train_blocks, masker, "training", texts, len(train_texts))
    check_blocks(held_blocks, masker, "held-out", texts, len(held_texts))

    mlm_model, fresh_head = load_encoder(model)
    if head_steps is None:
        head_steps = warmup_steps if (fresh_head or sbo_weight > 0) else 0
    settings["head_steps"] = min(head_steps, max_steps)
    if fresh_head:
        msg.warn(f"{model} has no masked-LM head: training a fresh one (see the README on steps)")
    learner = SpanBertPretrainer(mlm_model, sbo_weight=sbo_weight, max_offset=seq_len).to(device)
    optimizer, scheduler = make_optimizer(learner, lr, max_steps, warmup_steps)

    checkpoint = output_dir / CHECKPOINT_DIR / "state.pt"
    step, tokens_seen, seconds = 0, 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        saved = state["settings"]
        differ = [
            f"{k}: {saved.get(k)!r} there, {settings[k]!r} now" for k in RESUME_KEYS if saved.get(k) != settings[k]
        ]
        if differ:
            raise ValueError(
                f"spanbert pretrain: {checkpoint} is from a run with other settings ({'; '.join(differ)}); "
                f"use another OUTPUT_DIR or delete {checkpoint.parent}"
            )
        learner.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step, tokens_seen, seconds = state["step"], state["tokens_seen"], state["seconds"]
        before = state["heldout_loss_before"]
        msg.info(f"resuming from {checkpoint} at step {step}")
    else:
        before = heldout_loss(learner, masker, held_blocks, batch_size=batch_size, seed=seed, device=device)

    from tqdm import tqdm

    learner.train()
    bar = tqdm(
        total=max_steps,
        initial=step,
        desc="pretrain",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    while step < max_steps:
        started = time.perf_counter()
        rng = numpy.random.default_rng([seed, step])
        chosen = [train_blocks[i] for i in batch_indices(step, len(train_blocks), batch_size, seed)]
        batch = to_device(masker.batch(chosen, rng), device)
        learner.frozen_encoder = step < settings["head_steps"]
        loss, mlm_loss, sbo_loss = learner(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(learner.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        tokens_seen += int(batch["attention_mask"].sum())
        seconds += time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(
            loss=f"{float(loss.detach()):.3f}",
            mlm=f"{float(mlm_loss):.3f}",
            sbo=f"{float(sbo_loss):.3f}",
            tok_s=f"{tokens_seen / seconds:.0f}",
        )
        if step % save_every == 0 or step == max_steps:
            write_checkpoint(
                checkpoint,
                {
                    "settings": settings,
                    "step": step,
                    "tokens_seen": tokens_seen,
                    "seconds": seconds,
                    "heldout_loss_before": before,
                    "model": learner.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                },
            )
    bar.close()

    after = heldout_loss(learner, masker, held_blocks, batch_size=batch_size, seed=seed, device=device)
    save_encoder(learner.mlm_model, model, tokenizer, output_dir)
    meta = {
        "settings": settings,
        "steps": step,
        "tokens_seen": tokens_seen,
        "train_seconds": round(seconds, 2),
        "tokens_per_second": round(tokens_seen / max(seconds, 1e-9), 1),
        "fresh_mlm_head": fresh_head,
        "texts": {
            "train": len(train_texts),
            "heldout": len(held_texts),
            "train_blocks": len(train_blocks),
            "heldout_blocks": len(held_blocks),
        },
        "heldout_loss_before": round(before, 4),
        "heldout_loss_after": round(after, 4),
        "versions": versions(),
    }
    srsly.write_json(output_dir / META_FILE, meta)
    msg.good(f"held-out masked-LM loss {before:.3f} -> {after:.3f}; wrote {output_dir}")
    return meta


def write_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Write the training state to `path` through a temporary file, so an
    interruption leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def save_encoder(mlm_model, name: str, tokenizer, output_dir: Path) -> None:
    """Save the trained encoder as `AutoModel.from_pretrained(name)` would
    load it (with its pooler, if it had one), and the tokenizer."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        encoder = AutoModel.from_pretrained(name)
    finally:
        hf_logging.set_verbosity(verbosity)
    trained = mlm_model.base_model.state_dict()
    result = encoder.load_state_dict(trained, strict=False)
    unexpected = list(result.unexpected_keys)
    if unexpected:
        raise ValueError(
            f"spanbert pretrain: the encoder of {name} does not match its masked-LM form ({unexpected[:3]})"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))


# ---------------------------------------------------------------- command


@spanbert_cli.command("pretrain")
def pretrain_cli(
    texts: Path = Arg(..., help="A .txt (one text a line), .jsonl ('text' field) or .spacy file, or a folder of them"),
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
        pretrain(
            texts,
            output_dir,
            model=model,
            max_steps=max_steps,
            seq_len=seq_len,
            batch_size=batch_size,
            lr=lr,
            sbo_weight=sbo_weight,
            masking=masking,
            seed=seed,
            gpu_id=gpu_id,
            heldout_share=heldout_share,
            warmup_steps=warmup_steps,
            head_steps=head_steps,
            save_every=save_every,
        )
    except ValueError as err:
        msg.fail(str(err), exits=1)
