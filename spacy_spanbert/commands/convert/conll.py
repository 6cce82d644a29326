"""The conll format: one token a line, the last column a BIO / IOB1 / IOB2 /
BIOES / BILUO tag -> `doc.ents`."""

from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ...errors import Errors, check_positive
from ..text_input import iter_lines
from .common import (
    ConversionError,
    NlpOrVocab,
    PathLike,
    Tag,
    bio_spans,
    check_limit,
    get_nlp,
    is_tag,
    parse_tag,
    split_columns,
    token_doc,
)

Sentence = List[Tuple[str, Tag]]


def read_conll(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    n_sents: int = 1,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read a CoNLL-style file: one token a line, whitespace- or tab-separated
    columns, the last column a BIO/IOB1/IOB2/BIOES/BILUO tag. Blank and
    whitespace-only lines end a sentence; `-DOCSTART-` lines end a document
    (sentences from different documents are never grouped). A line before a
    sentence that starts with "#" and does not end in a tag is a comment
    (CoNLL-U style; a "#" token with a tag, e.g. "# O", is a token).
    `n_sents` sentences make one Doc, with sentence starts set. Sets
    `doc.ents` (tokens outside entities are O).

    path (PathLike): The file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    n_sents (int): Sentences per Doc.
    limit (Optional[int]): Keep only the first `limit` docs.
    encoding (str): The file's encoding.
    RETURNS (List[Doc]): The docs.
    """
    check_positive("read_conll", "n_sents", n_sents)
    check_limit("read_conll", limit)
    vocab = get_nlp(nlp_or_vocab).vocab
    docs: List[Doc] = []
    group: List[Sentence] = []
    for sentence in _iter_sentences(path, encoding):
        if sentence is not None:
            group.append(sentence)
        if group and (sentence is None or len(group) == n_sents):
            docs.append(_conll_doc(vocab, group))
            group = []
            if limit is not None and len(docs) >= limit:
                return docs
    if group:
        docs.append(_conll_doc(vocab, group))
    return docs


def _iter_sentences(path: PathLike, encoding: str) -> Iterator[Optional[Sentence]]:
    """Yield each sentence of a file as (word, tag) pairs, and None where a
    `-DOCSTART-` line ends a document."""
    sentence: Sentence = []
    n_cols: Optional[int] = None
    cols_line = 0
    for lineno, line in iter_lines(path, encoding=encoding):
        parts = split_columns(line, tabs_only=False) if line.strip() else []
        if not parts or parts[0] == "-DOCSTART-":
            if sentence:
                yield sentence
                sentence = []
            if parts:
                yield None
            continue
        if not sentence and line.startswith("#") and not is_tag(parts[-1].strip()):
            continue  # a comment before a sentence, e.g. MultiCoNER's "# id ... domain=en"
        if len(parts) < 2:
            raise ConversionError(Errors.E114.format(path=path, line=lineno, text=line))
        if n_cols is None:
            n_cols, cols_line = len(parts), lineno
        elif len(parts) != n_cols:
            raise ConversionError(
                Errors.E112.format(path=path, line=lineno, n_cols=n_cols, first=cols_line, found=len(parts), text=line)
            )
        if parts[0] == "":
            raise ConversionError(Errors.E113.format(path=path, line=lineno, text=line))
        sentence.append((parts[0], parse_tag(parts[-1].strip(), path=path, lineno=lineno)))
    if sentence:
        yield sentence


def _conll_doc(vocab: Vocab, sentences: List[Sentence]) -> Doc:
    """One Doc of `sentences`, sentence starts and entities set."""
    words: List[str] = []
    tags: List[Tag] = []
    sent_starts: List[bool] = []
    for sentence in sentences:
        for i, (word, tag) in enumerate(sentence):
            words.append(word)
            tags.append(tag)
            sent_starts.append(i == 0)
    doc = token_doc(vocab, words, sent_starts)
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in bio_spans(tags)]
    return doc
