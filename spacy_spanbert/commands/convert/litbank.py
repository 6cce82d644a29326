"""The litbank format: LitBank's nested-entity `.tsv` files, one BIO column
per nesting layer -> `doc.spans[KEY]` (all layers) and `doc.ents` (a
non-overlapping subset)."""

from pathlib import Path
from typing import Dict, List, Optional

from spacy.tokens import Doc, Span, SpanGroup
from spacy.vocab import Vocab

from ...errors import Errors, check_positive
from ..text_input import data_suffix, iter_lines
from .common import (
    DEFAULT_SPANS_KEY,
    ConversionError,
    NlpOrVocab,
    PathLike,
    Tag,
    TokenSpan,
    bio_spans,
    check_limit,
    get_nlp,
    parse_tag,
    split_columns,
    token_doc,
)

LITBANK_SUFFIX = ".tsv"


def read_litbank(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
    n_sents: Optional[int] = None,
) -> List[Doc]:
    """Read LitBank entity `.tsv` files: a folder (its `.tsv` and `.tsv.gz`
    files in sorted name order) or a single file; one Doc per file, or per
    `n_sents` sentences of a file (entities never cross sentences, so none is
    cut). Each line holds a token and one BIO column per nesting layer
    (innermost first), usually with a trailing tab; blank lines separate
    sentences (sentence starts are set).

    All layers' entities go to `doc.spans[spans_key]` (identical
    (start, end, label) triples once, sorted). `doc.ents` gets a maximal
    non-overlapping subset, chosen greedily: longer spans first, then outer
    layers, then earlier starts.

    path (PathLike): A folder of LitBank files, or one file.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    spans_key (str): The span group of all layers' entities.
    limit (Optional[int]): Read only the first `limit` files.
    encoding (str): The files' encoding.
    n_sents (Optional[int]): Sentences per Doc; None for one Doc per file.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_litbank", limit)
    vocab = get_nlp(nlp_or_vocab).vocab
    files = _litbank_files(Path(path))
    if n_sents is not None:
        check_positive("read_litbank", "n_sents", n_sents)
    if limit is not None:
        files = files[:limit]
    docs = [_read_litbank_file(file_, vocab, spans_key, encoding) for file_ in files]
    if n_sents is not None:
        docs = [part for doc in docs for part in _split_sentences(doc, n_sents, spans_key)]
    return docs


def _litbank_files(path: Path) -> List[Path]:
    """The LitBank files of a folder, sorted by name, or the one file given."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if data_suffix(p) == LITBANK_SUFFIX and p.is_file())
        if not files:
            raise ConversionError(Errors.E116.format(path=path))
        return files
    if path.exists():
        return [path]
    raise ConversionError(Errors.E117.format(path=path))


def _split_sentences(doc: Doc, n_sents: int, spans_key: str) -> List[Doc]:
    """Cut `doc` into docs of `n_sents` sentences, keeping entities and the span group."""
    starts = [token.i for token in doc if token.is_sent_start] + [len(doc)]
    parts = []
    for i in range(0, len(starts) - 1, n_sents):
        begin, end = starts[i], starts[min(i + n_sents, len(starts) - 1)]
        part = token_doc(doc.vocab, [t.text for t in doc[begin:end]], [t.is_sent_start for t in doc[begin:end]])
        part[0].is_sent_start = True
        spans = [
            Span(part, s.start - begin, s.end - begin, label=s.label_)
            for s in doc.spans[spans_key]
            if begin <= s.start and s.end <= end
        ]
        part.spans[spans_key] = SpanGroup(part, name=spans_key, spans=spans)
        part.ents = [
            Span(part, e.start - begin, e.end - begin, label=e.label_)
            for e in doc.ents
            if begin <= e.start and e.end <= end
        ]
        parts.append(part)
    return parts


def _read_litbank_file(path: Path, vocab: Vocab, spans_key: str, encoding: str) -> Doc:
    """One Doc of a LitBank file, with all layers' entities."""
    words: List[str] = []
    sent_starts: List[bool] = []
    layers: List[List[Tag]] = []
    cols_line = 0
    new_sentence = True
    for lineno, line in iter_lines(path, encoding=encoding):
        if not line.strip():
            new_sentence = True
            continue
        parts = split_columns(line, tabs_only=True)
        if len(parts) < 2:
            raise ConversionError(Errors.E115.format(path=path, line=lineno, text=line))
        if not layers:
            cols_line = lineno
            layers = [[] for _ in parts[1:]]
        elif len(parts) != len(layers) + 1:
            raise ConversionError(
                Errors.E112.format(
                    path=path, line=lineno, n_cols=len(layers) + 1, first=cols_line, found=len(parts), text=line
                )
            )
        if parts[0] == "":
            raise ConversionError(Errors.E113.format(path=path, line=lineno, text=line))
        words.append(parts[0])
        sent_starts.append(new_sentence)
        new_sentence = False
        for layer, tag in zip(layers, parts[1:]):
            layer.append(parse_tag(tag.strip(), path=path, lineno=lineno))
    if not words:
        raise ConversionError(Errors.E118.format(path=path))
    doc = token_doc(vocab, words, sent_starts)
    _set_entities(doc, layers, spans_key)
    return doc


def _set_entities(doc: Doc, layers: List[List[Tag]], spans_key: str) -> None:
    """Set `doc.spans[spans_key]` to the entities of all layers and
    `doc.ents` to a maximal non-overlapping subset of them."""
    candidates: Dict[TokenSpan, int] = {}  # span -> outermost layer
    for depth, layer in enumerate(layers):
        for span in bio_spans(layer):
            candidates[span] = depth
    spans = [Span(doc, start, end, label=label) for start, end, label in sorted(candidates)]
    doc.spans[spans_key] = SpanGroup(doc, name=spans_key, spans=spans)
    taken = [False] * len(doc)
    ents = []
    longest_outermost_first = sorted(
        candidates.items(), key=lambda item: (item[0][0] - item[0][1], -item[1], item[0][0])
    )
    for (start, end, label), _depth in longest_outermost_first:
        if not any(taken[start:end]):
            taken[start:end] = [True] * (end - start)
            ents.append(Span(doc, start, end, label=label))
    doc.ents = sorted(ents, key=lambda span: span.start)
