"""`spacy spanbert pretrain`: continued pretraining of a transformer on
unlabeled text with SpanBERT's span masking and span boundary objective
(Joshi et al. 2020). The engine is importable and runs without typer:

    from spacy_spanbert.commands.pretrain import pretrain
    meta = pretrain("texts.jsonl", "pretrained/", model="bert-base-cased", max_steps=1000)

`data` reads and packs TEXTS, `masking` chooses the masked spans, `model`
holds the SBO head and the pretrainer, `loop` trains, `checkpoint` saves and
resumes runs without pickle, and `cli` is the command's typer shell.
"""

from .checkpoint import CHECKPOINT_DIR, CHECKPOINT_FILE, Progress, read_checkpoint, write_checkpoint
from .data import TEXT_SUFFIXES, Block, load_tokenizer, pack_blocks, read_texts, split_heldout, tokenize_texts
from .loop import META_FILE, heldout_loss, make_optimizer, pretrain
from .masking import MASKINGS, Masker, span_length_distribution
from .model import SpanBertPretrainer, SpanBoundaryHead, load_encoder, mlm_head, save_encoder

__all__ = [
    "CHECKPOINT_DIR",
    "CHECKPOINT_FILE",
    "MASKINGS",
    "META_FILE",
    "TEXT_SUFFIXES",
    "Block",
    "Masker",
    "Progress",
    "SpanBertPretrainer",
    "SpanBoundaryHead",
    "heldout_loss",
    "load_encoder",
    "load_tokenizer",
    "make_optimizer",
    "mlm_head",
    "pack_blocks",
    "pretrain",
    "read_checkpoint",
    "read_texts",
    "save_encoder",
    "span_length_distribution",
    "split_heldout",
    "tokenize_texts",
    "write_checkpoint",
]
