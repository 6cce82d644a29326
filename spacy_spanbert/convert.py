"""Convert annotated corpora into spaCy `DocBin` files.

Command line:

    python -m spacy_spanbert.convert FORMAT INPUT OUTPUT [options]

writes a `.spacy` file to OUTPUT and prints a summary (docs, tokens and
per-label counts). Every format also has a reader returning `List[Doc]`:

    read_conll(path, nlp_or_vocab, n_sents=1)       BIO / IOB / BIOES / BILUO columns
    read_litbank(path, nlp_or_vocab, spans_key=...)  LitBank nested-entity .tsv
    read_prodigy(path, nlp_or_vocab)                 Prodigy-style JSONL
    read_trec(path, nlp_or_vocab, fine=False)        TREC question classes
    read_goemotions(path, nlp_or_vocab, labels=...)  GoEmotions .tsv
    read_squad(path, nlp_or_vocab, spans_key=...)    SQuAD 1.1 / 2.0 JSON (questions + answers)

`nlp_or_vocab` is a `Language`, a `Vocab` or a language code ("en").
Malformed input raises `ConversionError` (a `ValueError`) whose message starts
with `path:line:`; `main` prints it to stderr and returns 1.
"""

import argparse
import codecs
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.vocab import Vocab

__all__ = [
    "ConversionError",
    "FORMATS",
    "DEFAULT_SPANS_KEY",
    "read_conll",
    "read_litbank",
    "read_prodigy",
    "read_trec",
    "read_goemotions",
    "read_squad",
    "SquadStats",
    "QA_SPANS_KEY",
    "read_labels",
    "summarize",
    "format_summary",
    "main",
]

DEFAULT_SPANS_KEY = "spanbert_ner"
QA_SPANS_KEY = "spanbert_qa"
FORMATS = ("conll", "litbank", "prodigy", "trec", "goemotions", "squad")
DEFAULT_ENCODINGS = {
    "conll": "utf-8",
    "litbank": "utf-8",
    "prodigy": "utf-8",
    "trec": "iso-8859-1",
    "goemotions": "utf-8",
    "squad": "utf-8",
}
PathLike = Union[str, Path]
NlpOrVocab = Union[Language, Vocab, str]
# (prefix, label) of a validated BIO tag; label is None for "O".
Tag = Tuple[str, Optional[str]]

# B/I (BIO, IOB1, IOB2), plus E/S (BIOES) and L/U (BILUO, spaCy's own scheme)
_TAG_RE = re.compile(r"^([BIESLU])-(\S.*)$")
_CONTINUE = ("I", "E", "L")  # prefixes that continue an open entity of their label
_END = ("E", "L", "S", "U")  # prefixes that close the entity on their token


class ConversionError(ValueError):
    """Malformed input. The message starts with `path:line:` (or `path:`)."""


# ---------------------------------------------------------------------------
# helpers


def _get_nlp(nlp_or_vocab: NlpOrVocab) -> Language:
    if isinstance(nlp_or_vocab, Language):
        return nlp_or_vocab
    if isinstance(nlp_or_vocab, Vocab):
        return spacy.blank(nlp_or_vocab.lang or "en", vocab=nlp_or_vocab)
    if isinstance(nlp_or_vocab, str):
        return spacy.blank(nlp_or_vocab)
    raise TypeError(f"expected a Language, a Vocab or a language code, got {type(nlp_or_vocab).__name__}")


def _check_limit(limit: Optional[int]) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def _iter_lines(path: PathLike, encoding: str) -> Iterator[Tuple[int, str]]:
    """Yield (line number, line without its line break). The file is read as
    bytes and split on b"\\n" only, so U+2028, U+0085 etc. inside tokens do not
    break lines; each line is decoded on its own so errors name the line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ConversionError(f"{path}: cannot open: {e.strerror or e}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as e:
                bad = raw[e.start : e.start + 1]
                raise ConversionError(
                    f"{path}:{lineno}: cannot decode byte {bad!r} (column {e.start + 1}) "
                    f"as {encoding}; pass the right --encoding"
                ) from None
            except LookupError:
                raise ValueError(f"unknown encoding {encoding!r}") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")


def _is_tag(tag: str) -> bool:
    return tag == "O" or _TAG_RE.match(tag) is not None


def _parse_tag(tag: str, path: PathLike, lineno: int) -> Tag:
    if tag == "O":
        return ("O", None)
    m = _TAG_RE.match(tag)
    if m is None:
        raise ConversionError(
            f"{path}:{lineno}: invalid tag {tag!r} (expected O or B-, I-, E-, S-, L- or "
            f"U-LABEL: BIO, IOB1, BIOES or BILUO tags)"
        )
    return (m.group(1), m.group(2))


def _bio_spans(tags: Sequence[Tag]) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of BIO / IOB1 / IOB2 / BIOES / BILUO
    tags. B-x, S-x and U-x always start an entity; I-x, E-x and L-x continue
    an open x entity and otherwise start one (IOB1, and lenient on ill-formed
    BIOES); E-x, L-x, S-x and U-x end the entity on their token."""
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


def _token_doc(vocab: Vocab, words: List[str], sent_starts: Optional[List[bool]] = None) -> Doc:
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    return Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)


# ---------------------------------------------------------------------------
# conll


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
    """
    if isinstance(n_sents, bool) or not isinstance(n_sents, int) or n_sents < 1:
        raise ValueError(f"n_sents must be a positive integer, got {n_sents!r}")
    _check_limit(limit)
    vocab = _get_nlp(nlp_or_vocab).vocab
    docs: List[Doc] = []
    group: List[List[Tuple[str, Tag]]] = []
    sentence: List[Tuple[str, Tag]] = []
    n_cols: Optional[int] = None
    cols_line = 0

    def end_sentence() -> None:
        nonlocal sentence
        if sentence:
            group.append(sentence)
            sentence = []
            if len(group) == n_sents:
                flush()

    def flush() -> None:
        nonlocal group
        if group:
            docs.append(_conll_doc(vocab, group))
            group = []

    for lineno, line in _iter_lines(path, encoding):
        if limit is not None and len(docs) >= limit:
            break
        if not line.strip():
            end_sentence()
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        while len(parts) > 1 and parts[-1].strip() == "":
            parts.pop()  # trailing tabs
        if parts[0] == "-DOCSTART-":
            end_sentence()
            flush()
            continue
        if not sentence and line.startswith("#") and not _is_tag(parts[-1].strip()):
            continue  # a comment before a sentence, e.g. MultiCoNER's "# id ... domain=en"
        if len(parts) < 2:
            raise ConversionError(
                f"{path}:{lineno}: expected a token and a tag separated by a tab, found 1 column: {line!r}"
            )
        if n_cols is None:
            n_cols, cols_line = len(parts), lineno
        elif len(parts) != n_cols:
            raise ConversionError(
                f"{path}:{lineno}: expected {n_cols} columns (as on line {cols_line}), found {len(parts)}: {line!r}"
            )
        word = parts[0]
        if word == "":
            raise ConversionError(f"{path}:{lineno}: empty token: {line!r}")
        sentence.append((word, _parse_tag(parts[-1].strip(), path, lineno)))
    else:
        end_sentence()
        flush()
    return docs[:limit] if limit is not None else docs


def _conll_doc(vocab: Vocab, sentences: List[List[Tuple[str, Tag]]]) -> Doc:
    words: List[str] = []
    tags: List[Tag] = []
    sent_starts: List[bool] = []
    for sentence in sentences:
        for i, (word, tag) in enumerate(sentence):
            words.append(word)
            tags.append(tag)
            sent_starts.append(i == 0)
    doc = _token_doc(vocab, words, sent_starts)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in _bio_spans(tags)]
    return doc


# ---------------------------------------------------------------------------
# litbank


def read_litbank(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
    n_sents: Optional[int] = None,
) -> List[Doc]:
    """Read LitBank entity `.tsv` files: a folder (files in sorted name order)
    or a single file; one Doc per file, or per `n_sents` sentences of a file
    (entities never cross sentences, so none is cut). Each line holds a token and one BIO
    column per nesting layer (innermost first), usually with a trailing tab;
    blank lines separate sentences (sentence starts are set).

    All layers' entities go to `doc.spans[spans_key]` (identical
    (start, end, label) triples once, sorted). `doc.ents` gets a maximal
    non-overlapping subset, chosen greedily: longer spans first, then outer
    layers, then earlier starts.
    """
    _check_limit(limit)
    vocab = _get_nlp(nlp_or_vocab).vocab
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".tsv" and p.is_file())
        if not files:
            raise ConversionError(f"{path}: no .tsv files in this folder")
    elif path.exists():
        files = [path]
    else:
        raise ConversionError(f"{path}: no such file or folder")
    if n_sents is not None and (isinstance(n_sents, bool) or not isinstance(n_sents, int) or n_sents < 1):
        raise ValueError(f"n_sents must be a positive integer or None, got {n_sents!r}")
    if limit is not None:
        files = files[:limit]
    docs = [_read_litbank_file(f, vocab, spans_key, encoding) for f in files]
    if n_sents is not None:
        docs = [part for doc in docs for part in _split_sentences(doc, n_sents, spans_key)]
    return docs


def _split_sentences(doc: Doc, n_sents: int, spans_key: str) -> List[Doc]:
    """Cut DOC into docs of N_SENTS sentences, keeping entities and the span group."""
    starts = [token.i for token in doc if token.is_sent_start] + [len(doc)]
    parts = []
    for i in range(0, len(starts) - 1, n_sents):
        begin, end = starts[i], starts[min(i + n_sents, len(starts) - 1)]
        words = [t.text for t in doc[begin:end]]
        part = _token_doc(doc.vocab, words, [t.is_sent_start for t in doc[begin:end]])
        part[0].is_sent_start = True
        inside = lambda span, begin=begin, end=end: begin <= span.start and span.end <= end  # noqa: E731
        part.spans[spans_key] = SpanGroup(
            part,
            name=spans_key,
            spans=[
                Span(part, s.start - begin, s.end - begin, label=s.label_) for s in doc.spans[spans_key] if inside(s)
            ],
        )
        part.ents = [Span(part, e.start - begin, e.end - begin, label=e.label_) for e in doc.ents if inside(e)]
        parts.append(part)
    return parts


def _read_litbank_file(path: Path, vocab: Vocab, spans_key: str, encoding: str) -> Doc:
    words: List[str] = []
    sent_starts: List[bool] = []
    layers: List[List[Tag]] = []
    n_cols: Optional[int] = None
    cols_line = 0
    new_sentence = True
    for lineno, line in _iter_lines(path, encoding):
        if not line.strip():
            new_sentence = True
            continue
        parts = line.split("\t")
        while len(parts) > 1 and parts[-1].strip() == "":
            parts.pop()  # the trailing tab
        if len(parts) < 2:
            raise ConversionError(
                f"{path}:{lineno}: expected a token and at least one tag column "
                f"separated by tabs, found 1 column: {line!r}"
            )
        if n_cols is None:
            n_cols, cols_line = len(parts), lineno
            layers = [[] for _ in range(n_cols - 1)]
        elif len(parts) != n_cols:
            raise ConversionError(
                f"{path}:{lineno}: expected {n_cols} columns (as on line {cols_line}), found {len(parts)}: {line!r}"
            )
        if parts[0] == "":
            raise ConversionError(f"{path}:{lineno}: empty token: {line!r}")
        words.append(parts[0])
        sent_starts.append(new_sentence)
        new_sentence = False
        for layer, tag in zip(layers, parts[1:]):
            layer.append(_parse_tag(tag.strip(), path, lineno))
    if not words:
        raise ConversionError(f"{path}: no tokens in this file")
    doc = _token_doc(vocab, words, sent_starts)
    candidates: Dict[Tuple[int, int, str], int] = {}  # span -> outermost layer
    for depth, layer in enumerate(layers):
        for span in _bio_spans(layer):
            candidates[span] = depth
    ordered = sorted(candidates)
    doc.spans[spans_key] = SpanGroup(doc, name=spans_key, spans=[Span(doc, s, e, label=lab) for s, e, lab in ordered])
    taken = [False] * len(doc)
    ents = []
    for (s, e, lab), _depth in sorted(
        candidates.items(), key=lambda item: (item[0][0] - item[0][1], -item[1], item[0][0])
    ):
        if not any(taken[s:e]):
            taken[s:e] = [True] * (e - s)
            ents.append(Span(doc, s, e, label=lab))
    doc.ents = sorted(ents, key=lambda span: span.start)
    return doc


# ---------------------------------------------------------------------------
# prodigy


def read_prodigy(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read Prodigy-style JSONL (blank lines skipped). Per row:

    - `cats` (a dict label -> number): `doc.cats` as given.
    - `options` without `spans` (choice interface, e.g. textcat.manual):
      `doc.cats` has 1.0 for each option id in `accept`, 0.0 for the others;
      rows whose answer is not "accept" are skipped (rows without an answer
      are kept).
    - `label` without `spans` (binary textcat): `doc.cats[label]` is 1.0 for
      answer "accept" (or no answer), 0.0 for "reject"; "ignore" rows skipped.
    - otherwise NER: `spans` (char `start`/`end`, or inclusive
      `token_start`/`token_end` when the row has `tokens`) become `doc.ents`;
      rows whose answer is not "accept" are skipped (rows without an answer
      are kept). A row without spans gives a Doc with no entities (all O).

    The row's `tokens` (with `ws`, or `start`/`end` to infer spacing) are used
    when present, so offsets match; otherwise the text is tokenised with the
    pipeline's tokenizer and char offsets are expanded to token boundaries.
    """
    _check_limit(limit)
    nlp = _get_nlp(nlp_or_vocab)
    docs: List[Doc] = []
    for lineno, line in _iter_lines(path, encoding):
        if limit is not None and len(docs) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConversionError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise ConversionError(f"{path}:{lineno}: expected a JSON object, found {type(row).__name__}")
        doc = _prodigy_row(row, nlp, f"{path}:{lineno}")
        if doc is not None:
            docs.append(doc)
    return docs


def _prodigy_row(row: dict, nlp: Language, where: str) -> Optional[Doc]:
    answer = row.get("answer")
    if answer is not None and answer not in ("accept", "reject", "ignore"):
        raise ConversionError(f"{where}: unknown answer {answer!r} (expected accept, reject or ignore)")
    if "cats" in row:
        kind = "cats"
    elif "options" in row and "spans" not in row:
        kind = "choice"
    elif "label" in row and "spans" not in row:
        kind = "binary"
    else:
        kind = "ner"
    if answer == "ignore" or (answer == "reject" and kind != "binary"):
        return None
    doc, token_offsets = _prodigy_doc(row, nlp, where)
    if kind == "cats":
        cats = row["cats"]
        if not isinstance(cats, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in cats.items()
        ):
            raise ConversionError(f"{where}: 'cats' must map label strings to numbers")
        doc.cats = {label: float(value) for label, value in cats.items()}
    elif kind == "choice":
        doc.cats = _prodigy_choice(row, where)
    elif kind == "binary":
        label = row["label"]
        if not isinstance(label, str) or not label:
            raise ConversionError(f"{where}: 'label' must be a non-empty string")
        doc.cats = {label: 0.0 if answer == "reject" else 1.0}
    else:
        spans = row.get("spans") or []
        if not isinstance(spans, list):
            raise ConversionError(f"{where}: 'spans' must be a list")
        ents = {}
        for i, span in enumerate(spans):
            ent = _prodigy_span(doc, span, token_offsets, f"{where}: span {i}")
            ents[(ent.start, ent.end, ent.label_)] = ent
        try:
            doc.ents = sorted(ents.values(), key=lambda s: (s.start, s.end))
        except ValueError as e:
            raise ConversionError(f"{where}: overlapping spans: {e}") from None
    return doc


def _prodigy_choice(row: dict, where: str) -> Dict[str, float]:
    """`doc.cats` of a choice row (Prodigy's `choice` interface, e.g.
    textcat.manual with several labels): 1.0 for each accepted option id,
    0.0 for the others."""
    options = row["options"]
    if (
        not isinstance(options, list)
        or not options
        or not all(
            isinstance(o, dict) and isinstance(o.get("id"), (str, int)) and not isinstance(o.get("id"), bool)
            for o in options
        )
    ):
        raise ConversionError(f"{where}: 'options' must be a non-empty list of objects with an 'id'")
    accept = row.get("accept", [])
    if not isinstance(accept, list):
        raise ConversionError(f"{where}: 'accept' must be a list of option ids")
    ids = [str(o["id"]) for o in options]
    unknown = [a for a in accept if str(a) not in ids]
    if unknown:
        raise ConversionError(f"{where}: accepted id {unknown[0]!r} is not among the options {ids}")
    accepted = {str(a) for a in accept}
    return {i: float(i in accepted) for i in ids}


def _prodigy_doc(row: dict, nlp: Language, where: str) -> Tuple[Doc, Optional[List[Tuple[int, int]]]]:
    """The row's Doc and, if built from `tokens`, each token's char offsets."""
    text = row.get("text")
    tokens = row.get("tokens")
    if tokens is None:
        if not isinstance(text, str) or not text.strip():
            raise ConversionError(f"{where}: row has no 'text' (or it is empty)")
        return nlp.make_doc(text), None
    if not isinstance(tokens, list) or not tokens:
        raise ConversionError(f"{where}: 'tokens' must be a non-empty list")
    words: List[str] = []
    for i, tok in enumerate(tokens):
        if not isinstance(tok, dict) or not isinstance(tok.get("text"), str) or not tok["text"]:
            raise ConversionError(f"{where}: token {i} has no 'text'")
        words.append(tok["text"])
    has_offsets = all(isinstance(t.get("start"), int) and isinstance(t.get("end"), int) for t in tokens)
    spaces: List[bool] = []
    for i, tok in enumerate(tokens):
        if "ws" in tok:
            spaces.append(bool(tok["ws"]))
        elif i + 1 == len(tokens):
            spaces.append(False)
        elif has_offsets:
            spaces.append(tokens[i + 1]["start"] > tok["end"])
        else:
            spaces.append(True)
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    if has_offsets:
        offsets = [(t["start"], t["end"]) for t in tokens]
    else:
        offsets = [(t.idx, t.idx + len(t)) for t in doc]
    return doc, offsets


def _prodigy_span(doc: Doc, span: object, token_offsets: Optional[List[Tuple[int, int]]], where: str) -> Span:
    if not isinstance(span, dict):
        raise ConversionError(f"{where}: expected a JSON object")
    label = span.get("label")
    if not isinstance(label, str) or not label:
        raise ConversionError(f"{where}: missing or empty 'label'")
    ts, te = span.get("token_start"), span.get("token_end")
    if token_offsets is not None and isinstance(ts, int) and isinstance(te, int):
        if not 0 <= ts <= te < len(doc):
            raise ConversionError(f"{where}: token_start {ts} / token_end {te} out of range for {len(doc)} tokens")
        return Span(doc, ts, te + 1, label=label)
    start, end = span.get("start"), span.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        raise ConversionError(f"{where}: needs char 'start'/'end' (or 'token_start'/'token_end' with 'tokens')")
    if not 0 <= start < end:
        raise ConversionError(f"{where}: invalid char offsets [{start}:{end}]")
    if token_offsets is None:
        if end > len(doc.text):
            raise ConversionError(f"{where}: char offsets [{start}:{end}] beyond the text ({len(doc.text)} chars)")
        ent = doc.char_span(start, end, label=label, alignment_mode="expand")
        if ent is None or len(ent) == 0:
            raise ConversionError(f"{where}: char offsets [{start}:{end}] cover no token")
        return ent
    covered = [i for i, (s, e) in enumerate(token_offsets) if s < end and e > start]
    if not covered:
        raise ConversionError(f"{where}: char offsets [{start}:{end}] cover no token")
    return Span(doc, covered[0], covered[-1] + 1, label=label)


# ---------------------------------------------------------------------------
# trec


def read_trec(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    fine: bool = False,
    limit: Optional[int] = None,
    encoding: str = "iso-8859-1",
) -> List[Doc]:
    """Read the TREC question classification file (ISO-8859-1): one
    `COARSE:fine question` a line, pre-tokenised (split on whitespace).
    `doc.cats` is one-hot over every label seen in the whole file (coarse
    labels, or `COARSE:fine` with `fine=True`), so every Doc has every key."""
    _check_limit(limit)
    vocab = _get_nlp(nlp_or_vocab).vocab
    rows: List[Tuple[str, List[str]]] = []
    for lineno, line in _iter_lines(path, encoding):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        label = parts[0]
        coarse, colon, fine_label = label.partition(":")
        if not colon or not coarse or not fine_label:
            raise ConversionError(f"{path}:{lineno}: expected a COARSE:fine label first, found {label!r}")
        if len(parts) < 2 or not parts[1].strip():
            raise ConversionError(f"{path}:{lineno}: label {label!r} but no question text")
        rows.append((label if fine else coarse, parts[1].split()))
    labels = sorted({label for label, _ in rows})
    if limit is not None:
        rows = rows[:limit]
    docs = []
    for label, words in rows:
        doc = _token_doc(vocab, words)
        doc.cats = {name: 1.0 if name == label else 0.0 for name in labels}
        docs.append(doc)
    return docs


# ---------------------------------------------------------------------------
# goemotions


def read_labels(path: PathLike, encoding: str = "utf-8") -> List[str]:
    """Label names, one a line (the line index is the id). Trailing blank
    lines are ignored; blank or duplicate names elsewhere are errors."""
    lines = list(_iter_lines(path, encoding))
    while lines and not lines[-1][1].strip():
        lines.pop()
    labels: List[str] = []
    for lineno, line in lines:
        name = line.strip()
        if not name:
            raise ConversionError(f"{path}:{lineno}: blank label name")
        if name in labels:
            raise ConversionError(f"{path}:{lineno}: duplicate label {name!r}")
        labels.append(name)
    if not labels:
        raise ConversionError(f"{path}: no labels in this file")
    return labels


def read_goemotions(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    labels: Union[PathLike, Sequence[str]],
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read GoEmotions: no header, `text<TAB>ids<TAB>comment id` a line, ids
    comma-separated indices into `labels` (a labels file or a list of names).
    The text is tokenised with the pipeline's tokenizer; `doc.cats` is
    multi-label with every label key (1.0 / 0.0)."""
    _check_limit(limit)
    nlp = _get_nlp(nlp_or_vocab)
    names = read_labels(labels) if isinstance(labels, (str, Path)) else list(labels)
    if not names:
        raise ValueError("labels must not be empty")
    docs: List[Doc] = []
    for lineno, line in _iter_lines(path, encoding):
        if limit is not None and len(docs) >= limit:
            break
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ConversionError(
                f"{path}:{lineno}: expected 3 tab-separated columns (text, label ids, comment id), found {len(parts)}"
            )
        text, ids, _comment_id = parts
        if not text.strip():
            raise ConversionError(f"{path}:{lineno}: label ids {ids!r} but no text")
        if not ids.strip():
            raise ConversionError(f"{path}:{lineno}: no label ids")
        on = set()
        for raw in ids.split(","):
            raw = raw.strip()
            if not raw.isdigit() or int(raw) >= len(names):
                raise ConversionError(
                    f"{path}:{lineno}: unknown label id {raw!r} (the labels file names ids 0-{len(names) - 1})"
                )
            on.add(names[int(raw)])
        doc = nlp.make_doc(text)
        doc.cats = {name: 1.0 if name in on else 0.0 for name in names}
        docs.append(doc)
    return docs


# ---------------------------------------------------------------------------
# squad


class SquadStats(NamedTuple):
    """What `read_squad` found: questions, the unanswerable ones among them,
    gold answers, and the answers whose characters did not fall on spaCy
    token boundaries (expanded to whole tokens)."""

    questions: int
    unanswerable: int
    answers: int
    expanded: int


def read_squad(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    spans_key: str = QA_SPANS_KEY,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> Tuple[List[Doc], SquadStats]:
    """Read SQuAD 1.1 or 2.0 JSON (`data` -> articles -> `paragraphs` ->
    `context` + `qas`): one Doc per paragraph, the context tokenised with the
    pipeline's tokenizer. `doc._.questions` is `{id: question}`; the gold
    answers are `doc.spans[spans_key]`, one span per answer labelled with the
    question id (aligned to tokens with `char_span(..., alignment_mode=
    "expand")`), the original answer texts in the group's `attrs["texts"]`.
    A question marked `is_impossible` (or with no answers) gets no span.
    Save with `DocBin(store_user_data=True)` to keep the questions.

    RETURNS (Tuple[List[Doc], SquadStats]): The docs and what was found.
    """
    _check_limit(limit)
    nlp = _get_nlp(nlp_or_vocab)
    if not Doc.has_extension("questions"):
        Doc.set_extension("questions", default=None)
    try:
        with open(path, encoding=encoding) as f:
            data = json.load(f)
    except OSError as e:
        raise ConversionError(f"{path}: cannot open: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise ConversionError(f"{path}: cannot decode the file as {encoding}: {e.reason}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ConversionError(f"{path}: expected SQuAD JSON, an object with a 'data' list of articles")
    docs: List[Doc] = []
    n_questions = n_unanswerable = n_answers = n_expanded = 0
    seen: set = set()
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            if limit is not None and len(docs) >= limit:
                break
            where = f"{path}: article {a}, paragraph {p}"
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ConversionError(f"{where}: no 'context' string")
            doc = nlp.make_doc(context)
            questions: Dict[str, str] = {}
            spans: List[Span] = []
            texts: List[str] = []
            for qa in paragraph.get("qas", []):
                qid = qa.get("id")
                if not isinstance(qid, str) or not qid:
                    raise ConversionError(f"{where}: a question without a string 'id'")
                if qid in seen:
                    raise ConversionError(f"{where}: question {qid!r}: duplicate id")
                seen.add(qid)
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise ConversionError(f"{where}: question {qid!r}: empty or missing 'question' text")
                questions[qid] = question
                n_questions += 1
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                if not answers:
                    n_unanswerable += 1
                for answer in answers:
                    text, start = answer.get("text"), answer.get("answer_start")
                    if not isinstance(text, str) or not text or isinstance(start, bool) or not isinstance(start, int):
                        raise ConversionError(
                            f"{where}: question {qid!r}: an answer needs a non-empty 'text' and an "
                            f"integer 'answer_start', got {answer!r}"
                        )
                    end = start + len(text)
                    if context[start:end] != text:
                        raise ConversionError(
                            f"{where}: question {qid!r}: answer {text!r} does not match the context "
                            f"at its answer_start {start} (found {context[start:end]!r})"
                        )
                    span = doc.char_span(start, end, label=qid)
                    if span is None:
                        span = doc.char_span(start, end, label=qid, alignment_mode="expand")
                        n_expanded += 1
                    if span is None or len(span) == 0:
                        raise ConversionError(f"{where}: question {qid!r}: answer {text!r} at {start} covers no token")
                    spans.append(span)
                    texts.append(text)
                    n_answers += 1
            doc._.questions = questions
            group = SpanGroup(doc, name=spans_key, spans=spans)
            group.attrs["texts"] = texts
            doc.spans[spans_key] = group
            docs.append(doc)
    return docs, SquadStats(n_questions, n_unanswerable, n_answers, n_expanded)


def format_squad_summary(docs: List[Doc], stats: SquadStats, output: str) -> str:
    lines = [f"Wrote {_count(len(docs), 'doc')} ({_count(sum(len(d) for d in docs), 'token')}) to {output}"]
    lines.append(
        f"Questions: {stats.questions} ({stats.unanswerable} unanswerable); "
        f"answers: {stats.answers}, {stats.expanded} of them expanded to token boundaries"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# summary and CLI


def summarize(docs: Iterable[Doc], spans_key: str = DEFAULT_SPANS_KEY) -> Dict[str, object]:
    """Counts: docs, tokens, entities / spans / positive cats per label."""
    n_docs = n_tokens = 0
    ents: Counter = Counter()
    spans: Counter = Counter()
    cats: Counter = Counter()
    cat_docs = 0
    for doc in docs:
        n_docs += 1
        n_tokens += len(doc)
        ents.update(ent.label_ for ent in doc.ents)
        if spans_key in doc.spans:
            spans.update(span.label_ for span in doc.spans[spans_key])
        if doc.cats:
            cat_docs += 1
            for label, value in doc.cats.items():
                cats[label] += 0
                if value >= 0.5:
                    cats[label] += 1
    return {
        "docs": n_docs,
        "tokens": n_tokens,
        "ents": ents,
        "spans": spans,
        "cats": cats,
        "cat_docs": cat_docs,
    }


def _table(title: str, counts: Counter) -> List[str]:
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    width = max([len("label")] + [len(label) for label, _ in rows])
    lines = [title, f"  {'label':<{width}}  {'count':>7}"]
    lines += [f"  {label:<{width}}  {count:>7}" for label, count in rows]
    return lines


def format_summary(summary: Dict[str, object], output: str, spans_key: str) -> str:
    lines = [f"Wrote {_count(summary['docs'], 'doc')} ({_count(summary['tokens'], 'token')}) to {output}"]
    ents, spans, cats = summary["ents"], summary["spans"], summary["cats"]
    if ents or not (spans or cats):
        lines += _table(f"Entities (doc.ents): {sum(ents.values())}", ents)
    if spans:
        lines += _table(f"Spans (doc.spans[{spans_key!r}]): {sum(spans.values())}", spans)
    if cats:
        lines += _table(
            f"Categories (docs with the label >= 0.5, of {summary['cat_docs']} docs with cats)",
            cats,
        )
    return "\n".join(lines)


def _write(docs: List[Doc], output: str, store_user_data: bool = False) -> None:
    out = Path(output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        DocBin(docs=docs, store_user_data=store_user_data).to_disk(out)
    except OSError as e:
        raise ConversionError(f"{output}: cannot write: {e.strerror or e}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_spanbert.convert",
        description="Convert an annotated corpus into a spaCy DocBin (.spacy) file.",
        epilog=(
            "formats: conll (token ... tag, BIO/IOB1/IOB2/BIOES/BILUO -> doc.ents); "
            "litbank (folder of LitBank .tsv -> doc.spans[KEY] + doc.ents); "
            "prodigy (JSONL: spans -> doc.ents, label+answer, options+accept or cats -> doc.cats); "
            "trec (ISO-8859-1 'COARSE:fine question' -> one-hot doc.cats); "
            "goemotions (text<TAB>ids<TAB>id with --labels -> multi-label doc.cats); "
            f"squad (SQuAD 1.1/2.0 JSON, one doc per paragraph -> doc._.questions + "
            f"doc.spans[KEY], default {QA_SPANS_KEY!r}). "
            "Malformed input exits with status 1 and a path:line message."
        ),
    )
    parser.add_argument("format", choices=FORMATS, help="input format")
    parser.add_argument("input", help="input file (litbank: folder of .tsv files, or one file)")
    parser.add_argument("output", help="output .spacy file")
    parser.add_argument("--lang", default="en", help="language of the blank pipeline (default: en)")
    parser.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="keep only the first N docs")
    parser.add_argument(
        "--encoding", default=None, help="input encoding (default: iso-8859-1 for trec, utf-8 otherwise)"
    )
    parser.add_argument(
        "--n-sents",
        type=_positive_int,
        default=None,
        metavar="N",
        help="conll: sentences per doc (default: 1); litbank: split each "
        "file into docs of N sentences (default: one doc per file)",
    )
    parser.add_argument(
        "--spans-key",
        default=None,
        metavar="KEY",
        help=f"litbank: doc.spans key for all layers (default: {DEFAULT_SPANS_KEY}); "
        f"squad: key of the answers (default: {QA_SPANS_KEY})",
    )
    parser.add_argument("--fine", action="store_true", help="trec: use COARSE:fine labels instead of coarse ones")
    parser.add_argument(
        "--labels",
        default=None,
        metavar="FILE",
        help="goemotions (required): label names, one a line (id = line index)",
    )
    parser.add_argument(
        "--dev-output", default=None, metavar="PATH", help="write the last --dev-last docs here instead of to OUTPUT"
    )
    parser.add_argument(
        "--dev-last",
        type=_positive_int,
        default=None,
        metavar="N",
        help="number of final docs held out into --dev-output",
    )
    parser.add_argument(
        "--drop-texts-in",
        default=None,
        metavar="FILE",
        help="drop docs whose text also occurs in this .spacy file (e.g. a "
        "dev set that shares rows with the converted training set)",
    )
    return parser


def texts_in(path: str) -> set:
    """The texts of the docs in a .spacy file.

    path (str): A .spacy file (DocBin).
    RETURNS (set): The texts of its docs.
    """
    try:
        doc_bin = DocBin().from_disk(path)
    except Exception as e:  # srsly/msgpack raise their own error types
        raise ConversionError(f"--drop-texts-in {path}: cannot read it as a .spacy file ({e})") from None
    return {doc.text for doc in doc_bin.get_docs(Vocab())}


def drop_texts(docs: List[Doc], texts: set) -> Tuple[List[Doc], int]:
    """Drop docs whose text is in `texts`.

    RETURNS (Tuple[List[Doc], int]): The kept docs and the number dropped.
    """
    kept = [doc for doc in docs if doc.text not in texts]
    return kept, len(docs) - len(kept)


def _read(args: argparse.Namespace) -> List[Doc]:
    nlp = spacy.blank(args.lang)
    encoding = args.encoding or DEFAULT_ENCODINGS[args.format]
    common = {"limit": args.limit, "encoding": encoding}
    if args.format == "conll":
        return read_conll(args.input, nlp, n_sents=args.n_sents or 1, **common)
    if args.format == "litbank":
        return read_litbank(
            args.input, nlp, spans_key=args.spans_key or DEFAULT_SPANS_KEY, n_sents=args.n_sents, **common
        )
    if args.format == "prodigy":
        return read_prodigy(args.input, nlp, **common)
    if args.format == "trec":
        return read_trec(args.input, nlp, fine=args.fine, **common)
    if args.format == "squad":
        docs, args.squad_stats = read_squad(args.input, nlp, spans_key=args.spans_key or QA_SPANS_KEY, **common)
        return docs
    return read_goemotions(args.input, nlp, labels=args.labels, **common)


def _count(n: int, noun: str) -> str:
    """ "1 doc", "2 docs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def main(argv: Optional[List[str]] = None) -> int:
    """Run the converter; returns 0, or 1 on malformed input (message on
    stderr). Usage errors exit with status 2 (argparse)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    only = {
        "n_sents": ("--n-sents", "conll or litbank"),
        "spans_key": ("--spans-key", "litbank or squad"),
        "fine": ("--fine", "trec"),
        "labels": ("--labels", "goemotions"),
    }
    for dest, (flag, fmt) in only.items():
        if getattr(args, dest) not in (None, False) and args.format not in fmt.split(" or "):
            parser.error(f"{flag} only applies to the {fmt} format")
    if args.format == "goemotions" and args.labels is None:
        parser.error("the goemotions format requires --labels FILE")
    if (args.dev_output is None) != (args.dev_last is None):
        parser.error("--dev-output and --dev-last go together")
    try:
        spacy.blank(args.lang)
    except ImportError as e:
        parser.error(f"--lang {args.lang!r}: {e}")
    if args.encoding is not None:
        try:
            codecs.lookup(args.encoding)
        except LookupError:
            parser.error(f"--encoding: unknown encoding {args.encoding!r}")
    spans_key = args.spans_key or DEFAULT_SPANS_KEY
    try:
        docs = _read(args)
        if not docs:
            raise ConversionError(f"{args.input}: no documents found (empty output)")
        n_dropped = 0
        if args.drop_texts_in is not None:
            docs, n_dropped = drop_texts(docs, texts_in(args.drop_texts_in))
            if not docs:
                raise ConversionError(
                    f"{args.input}: every doc's text occurs in {args.drop_texts_in} "
                    f"(--drop-texts-in leaves nothing to write)"
                )
        dev: List[Doc] = []
        if args.dev_last is not None:
            if args.dev_last >= len(docs):
                raise ConversionError(
                    f"{args.input}: --dev-last {args.dev_last} leaves no training docs (read {len(docs)} docs)"
                )
            docs, dev = docs[: -args.dev_last], docs[-args.dev_last :]
        store_user_data = args.format == "squad"  # doc._.questions
        _write(docs, args.output, store_user_data)
        if dev:
            _write(dev, args.dev_output, store_user_data)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if n_dropped:
        print(f"Dropped {n_dropped} docs whose text occurs in {args.drop_texts_in}")
    if args.format == "squad":
        print(format_squad_summary(docs + dev, args.squad_stats, args.output))
        return 0
    print(format_summary(summarize(docs, spans_key), args.output, spans_key))
    if dev:
        print(format_summary(summarize(dev, spans_key), args.dev_output, spans_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
