"""The text of `spacy spanbert pretrain`: reading TEXTS, word pieces grouped
by word, blocks of at most one sequence, and the held-out split.

TEXTS is a `.txt` file (one text a line), a `.jsonl` file (a "text" field a
line), either of them gzipped (`.txt.gz`, `.jsonl.gz`), a `.spacy` DocBin, or
a folder of those. Text files go through the commands' one reader
(`commands/text_input.py`: BOM, CRLF, gzip, errors that name file and line).
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import numpy

from ...errors import Errors
from ..text_input import GZIP_SUFFIX, data_suffix, iter_jsonl, iter_lines, non_blank

LINE_SUFFIXES = (".txt", ".jsonl")
DOCBIN_SUFFIX = ".spacy"
TEXT_SUFFIXES = (*LINE_SUFFIXES, DOCBIN_SUFFIX, *(suffix + GZIP_SUFFIX for suffix in LINE_SUFFIXES))
# a text that shows whether a tokenizer's word_ids() follow the words
WORD_PROBE = "four words in here"


def is_text_file(path: Path) -> bool:
    """Whether `path` names a file TEXTS may hold (`.spacy` is not gzipped)."""
    return data_suffix(path) in LINE_SUFFIXES or path.suffix == DOCBIN_SUFFIX


def read_texts(path: Path) -> Iterator[Tuple[str, str]]:
    """Read the texts of a .txt file (one text a line; blank lines are
    skipped), a .jsonl file (a "text" field a line), a gzip of either, a
    .spacy DocBin or a folder of those (recursively, in sorted order).

    path (Path): The file or folder.
    YIELDS (Tuple[str, str]): The text and where it is ("file:line" or "file doc N").
    """
    path = Path(path)
    suffixes = ", ".join(TEXT_SUFFIXES)
    if not path.exists():
        raise ValueError(Errors.E300.format(path=path))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_text_file(p))
        if not files:
            raise ValueError(Errors.E301.format(path=path, suffixes=suffixes))
    elif not is_text_file(path):
        raise ValueError(Errors.E302.format(path=path, suffixes=suffixes))
    else:
        files = [path]
    for file in files:
        n_texts = 0
        reader = _read_docbin if file.suffix == DOCBIN_SUFFIX else _read_lines
        for text, where in reader(file):
            n_texts += 1
            yield text, where
        if n_texts == 0:
            raise ValueError(Errors.E303.format(path=file))


def _read_lines(file: Path) -> Iterator[Tuple[str, str]]:
    """The texts of a .txt or .jsonl file (or a gzip of one)."""
    if data_suffix(file) == ".txt":
        for lineno, line in non_blank(iter_lines(file)):
            yield line.strip(), f"{file}:{lineno}"
        return
    for lineno, record in iter_jsonl(file):
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError(Errors.E304.format(path=file, line=lineno))
        yield text.strip(), f"{file}:{lineno}"


def _read_docbin(file: Path) -> Iterator[Tuple[str, str]]:
    """The non-blank texts of a DocBin."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    try:
        docbin = DocBin().from_disk(file)
    except Exception as err:  # msgpack / zlib errors of a file that is not a DocBin
        raise ValueError(Errors.E305.format(path=file, error=f"{type(err).__name__}: {err}")) from None
    for i, doc in enumerate(docbin.get_docs(Vocab())):
        if doc.text.strip():
            yield doc.text, f"{file} doc {i}"


def split_heldout(texts: List[str], share: float, path: Path) -> Tuple[List[str], List[str]]:
    """The last texts (about `share` of them) as the held-out slice, the rest
    for training.

    texts (List[str]): All texts, in reading order.
    share (float): The held-out share, in (0, 1).
    path (Path): TEXTS, for error messages.
    RETURNS (Tuple[List[str], List[str]]): The training and held-out texts.
    """
    if not 0 < share < 1:
        raise ValueError(Errors.E312.format(share=share))
    n_held = max(1, int(round(share * len(texts))))
    if len(texts) - n_held < 1:
        raise ValueError(Errors.E313.format(path=path, n_texts=len(texts), share=share, n_needed=math.ceil(2 / share)))
    return texts[:-n_held], texts[-n_held:]


@dataclass
class Block:
    """One training sequence before special tokens: its word-piece ids and,
    per piece, the index of its word within the block."""

    ids: numpy.ndarray
    words: numpy.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def load_tokenizer(name: str):
    """A fast tokenizer for `name` that reports word boundaries.

    name (str): A Hugging Face model name or folder.
    RETURNS (PreTrainedTokenizerFast): The tokenizer; a ValueError for a
        tokenizer without word boundaries or without a mask token.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    if not tokenizer.is_fast:
        raise ValueError(Errors.E306.format(model=name))
    if tokenizer.mask_token_id is None:
        raise ValueError(Errors.E307.format(model=name))
    words = tokenizer(WORD_PROBE, add_special_tokens=False).word_ids()
    if any(w is None for w in words) or len(set(words)) != len(WORD_PROBE.split()):
        raise ValueError(Errors.E308.format(model=name, probe=WORD_PROBE, words=words))
    return tokenizer


def tokenize_texts(texts: Sequence[str], tokenizer, batch_size: int = 1000) -> List[List[List[int]]]:
    """Word pieces of each text, grouped by word.

    texts (Sequence[str]): The texts.
    tokenizer (PreTrainedTokenizerFast): A tokenizer from `load_tokenizer`.
    batch_size (int): Texts per call of the tokenizer.
    RETURNS (List[List[List[int]]]): Per text, per word, the piece ids.
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
    `capacity` pieces, at word boundaries (a longer word is cut to fit).

    texts (Sequence[List[List[int]]]): Per text, per word, the piece ids.
    capacity (int): The most pieces of a block.
    RETURNS (List[Block]): The blocks, in text order.
    """
    blocks: List[Block] = []
    ids: List[int] = []
    words: List[int] = []
    n_words = 0
    for text in texts:
        for word in text:
            if ids and len(ids) + len(word) > capacity:
                blocks.append(_block(ids, words))
                ids, words, n_words = [], [], 0
            word = word[:capacity]
            ids.extend(word)
            words.extend([n_words] * len(word))
            n_words += 1
    if ids:
        blocks.append(_block(ids, words))
    return blocks


def _block(ids: List[int], words: List[int]) -> Block:
    return Block(numpy.asarray(ids, dtype="int64"), numpy.asarray(words, dtype="int32"))
