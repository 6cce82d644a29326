"""What several formats share: the span keys, the pipeline a reader
tokenizes with, the check of `limit`, BIO tag parsing and docs built from
pre-tokenized words."""

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ...errors import Errors, check_positive
from ..text_input import InputError

ConversionError = InputError
DEFAULT_SPANS_KEY = "spanbert_ner"
QA_SPANS_KEY = "spanbert_qa"
PathLike = Union[str, Path]
NlpOrVocab = Union[Language, Vocab, str]
# (prefix, label) of a validated BIO tag; label is None for "O".
Tag = Tuple[str, Optional[str]]
# (start, end, label) of a span in token indices
TokenSpan = Tuple[int, int, str]

# B/I (BIO, IOB1, IOB2), plus E/S (BIOES) and L/U (BILUO, spaCy's own scheme)
_TAG_RE = re.compile(r"^([BIESLU])-(\S.*)$")
_CONTINUE = ("I", "E", "L")  # prefixes that continue an open entity of their label
_END = ("E", "L", "S", "U")  # prefixes that close the entity on their token


def get_nlp(nlp_or_vocab: NlpOrVocab) -> Language:
    """The pipeline a reader tokenizes with.

    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code ("en").
    RETURNS (Language): The Language, or a blank one sharing the Vocab.
    """
    if isinstance(nlp_or_vocab, Language):
        return nlp_or_vocab
    if isinstance(nlp_or_vocab, Vocab):
        return spacy.blank(nlp_or_vocab.lang or "en", vocab=nlp_or_vocab)
    if isinstance(nlp_or_vocab, str):
        return spacy.blank(nlp_or_vocab)
    raise TypeError(Errors.E110.format(kind=type(nlp_or_vocab).__name__))


def check_limit(where: str, limit: Optional[int]) -> None:
    """Raise a ValueError naming `where` unless `limit` is None or a positive int."""
    if limit is not None:
        check_positive(where, "limit", limit)


def is_tag(tag: str) -> bool:
    """Whether `tag` is "O" or a prefixed tag such as "B-PER"."""
    return tag == "O" or _TAG_RE.match(tag) is not None


def parse_tag(tag: str, *, path: PathLike, lineno: int) -> Tag:
    """The (prefix, label) of a tag; "O" gives ("O", None).

    tag (str): The tag, e.g. "B-PER", "U-LOC" or "O".
    path (PathLike): The file, for error messages.
    lineno (int): The line, for error messages.
    RETURNS (Tag): The prefix and the label.
    """
    if tag == "O":
        return ("O", None)
    match = _TAG_RE.match(tag)
    if match is None:
        raise ConversionError(Errors.E111.format(path=path, line=lineno, tag=tag))
    return (match.group(1), match.group(2))


def bio_spans(tags: Sequence[Tag]) -> List[TokenSpan]:
    """The (start, end, label) token spans of BIO / IOB1 / IOB2 / BIOES /
    BILUO tags. B-x, S-x and U-x always start an entity; I-x, E-x and L-x
    continue an open x entity and otherwise start one (IOB1, and lenient on
    ill-formed BIOES); E-x, L-x, S-x and U-x end the entity on their token.

    tags (Sequence[Tag]): Parsed tags, one per token.
    RETURNS (List[TokenSpan]): The entities, in order.
    """
    spans = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, (prefix, tag_label) in enumerate(tags):
        if prefix == "O":
            if start is not None:
                spans.append((start, i, label))
            start, label = None, None
            continue
        if start is None or prefix not in _CONTINUE or tag_label != label:
            if start is not None:
                spans.append((start, i, label))
            start, label = i, tag_label
        if prefix in _END:
            spans.append((start, i + 1, label))
            start, label = None, None
    if start is not None:
        spans.append((start, len(tags), label))
    return spans


def split_columns(line: str, *, tabs_only: bool) -> List[str]:
    """The columns of a token line, without trailing empty ones (a trailing
    tab). Lines without a tab are split on whitespace unless `tabs_only`."""
    parts = line.split("\t") if tabs_only or "\t" in line else line.split()
    while len(parts) > 1 and parts[-1].strip() == "":
        parts.pop()
    return parts


def token_doc(vocab: Vocab, words: List[str], sent_starts: Optional[List[bool]] = None) -> Doc:
    """A Doc of pre-tokenized words, one space between them.

    vocab (Vocab): The vocab.
    words (List[str]): The tokens.
    sent_starts (Optional[List[bool]]): Sentence starts, one per token.
    RETURNS (Doc): The doc.
    """
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    return Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
