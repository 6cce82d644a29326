"""Candidate-span functions ("suggesters") for the `spanbert` component.

A suggester follows spaCy's protocol: `(docs, *, ops=None) -> Ragged`. The
ragged array's `dataXd` holds int32 `[start, end)` token offsets of shape
`(n_spans, 2)` (also when `n_spans == 0`) and its `lengths` hold the number
of spans of each doc. Within a doc the spans are unique and sorted by
`(start, end)`.

Every suggester built here carries a `requires` attribute (List[str]): the
pipeline annotations it needs, in spaCy's `"token.dep"` / `"doc.ents"`
notation (empty when it needs none); `spanbert` checks them at `initialize`.

One module over 500 lines on purpose: the six registered suggesters share the
protocol's canonical-form helpers (sorting, deduplication, spaCy's empty
output), and a reader looking for "what can propose candidates" finds them all
here.
"""

import copy
import functools
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

try:  # Python >= 3.8
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol, runtime_checkable  # type: ignore

import numpy
from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Ops, get_current_ops
from thinc.types import Ragged

from .errors import Errors

__all__ = [
    "Suggester",
    "normalize_suggestions",
    "NgramSuggester",
    "NounChunkSuggester",
    "SentenceSuggester",
    "EntitySuggester",
    "PatternSuggester",
    "MergedSuggester",
    "build_ngram_suggester",
    "build_noun_chunk_suggester",
    "build_sentence_suggester",
    "build_entity_suggester",
    "build_pattern_suggester",
    "build_merged_suggester",
]


@runtime_checkable
class Suggester(Protocol):
    """Anything callable as `suggester(docs, ops=ops) -> Ragged`."""

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged: ...


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _empty(ops: Ops, n_docs: int) -> Ragged:
    """A Ragged with no spans for `n_docs` docs."""
    return Ragged(ops.alloc2i(0, 2), ops.asarray1i(numpy.zeros((n_docs,), dtype="i")))


def _canonical(data, doc_ids, n_docs: int, ops: Ops) -> Ragged:
    """Sort the rows of `data` by (doc, start, end), drop duplicate rows of
    a doc and count the spans per doc. `data` is an (n, 2) int array and
    `doc_ids` an (n,) int array on `ops`' device."""
    xp = ops.xp
    if data.shape[0] == 0:
        return _empty(ops, n_docs)
    data = data.astype("i", copy=False)
    doc_ids = doc_ids.astype("i", copy=False)
    # lexsort sorts by the last key first: doc, then start, then end.
    order = xp.lexsort(xp.stack([data[:, 1], data[:, 0], doc_ids]))
    data = data[order]
    doc_ids = doc_ids[order]
    full = xp.concatenate([doc_ids[:, None], data], axis=1)
    keep = xp.concatenate([xp.ones((1,), dtype=bool), (full[1:] != full[:-1]).any(axis=1)])
    data = data[keep]
    doc_ids = doc_ids[keep]
    lengths = xp.bincount(doc_ids, minlength=n_docs)
    return Ragged(ops.asarray2i(xp.ascontiguousarray(data)), ops.asarray1i(lengths))


def _as_rows(ragged: Ragged, ops: Ops, where: str, n_docs: Optional[int] = None) -> Tuple[Any, numpy.ndarray]:
    """The (n, 2) int rows of a suggester's output (spaCy's (0, 0) empty
    output becomes (0, 2)) and its per-doc lengths as a numpy array, checked
    to count the rows, with one length for each of `n_docs` docs if given."""
    lengths = numpy.asarray(ops.to_numpy(ragged.lengths), dtype="i").reshape((-1,))
    data = ops.asarray(ragged.dataXd)
    if data.size == 0:
        data = ops.alloc2i(0, 2)
    elif data.ndim != 2 or data.shape[1] != 2:
        raise ValueError(Errors.E060.format(where=where, shape=tuple(data.shape)))
    if n_docs is None:
        n_docs = len(lengths)
    total = int(lengths.sum())
    if total != data.shape[0] or len(lengths) != n_docs:
        raise ValueError(
            Errors.E061.format(where=where, n_spans=data.shape[0], n_lengths=len(lengths), total=total, n_docs=n_docs)
        )
    return data, lengths


def _doc_ids(lengths: numpy.ndarray, ops: Ops):
    """The doc index of every row, given the spans per doc."""
    ids = numpy.repeat(numpy.arange(len(lengths), dtype="i"), lengths)
    return ops.asarray1i(ids)


def normalize_suggestions(ragged: Ragged, ops: Optional[Ops] = None) -> Ragged:
    """Bring any suggester's output into spanbert's canonical form: int32
    data of shape (n_spans, 2) (also for no spans, where spaCy's suggesters
    give (0, 0)), with the spans of each doc unique and sorted by
    (start, end), and one int32 length per doc.

    ragged (Ragged): A suggester's output.
    ops (Optional[Ops]): The ops to put the result on; None for the current ops.
    RETURNS (Ragged): The canonical spans, one length per doc.
    """
    if ops is None:
        ops = get_current_ops()
    data, lengths = _as_rows(ragged, ops, "spanbert normalize_suggestions")
    return _canonical(data, _doc_ids(lengths, ops), len(lengths), ops)


def _from_pairs(pairs_per_doc: Sequence[List[Tuple[int, int]]], ops: Ops) -> Ragged:
    """Canonical Ragged from Python (start, end) pairs, one list per doc."""
    lengths = numpy.asarray([len(pairs) for pairs in pairs_per_doc], dtype="i")
    flat = [pair for pairs in pairs_per_doc for pair in pairs]
    if not flat:
        return _empty(ops, len(pairs_per_doc))
    data = ops.asarray2i(numpy.asarray(flat, dtype="i").reshape((-1, 2)))
    return _canonical(data, _doc_ids(lengths, ops), len(pairs_per_doc), ops)


def _ops(ops: Optional[Ops]) -> Ops:
    return ops if ops is not None else get_current_ops()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# Suggesters
# ---------------------------------------------------------------------------


class NgramSuggester:
    """All spans of `min_size` to `max_size` tokens."""

    def __init__(self, min_size: int = 1, max_size: int = 8) -> None:
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.requires: List[str] = []

    def _rows(self, n: int, xp) -> Any:
        sizes = xp.arange(self.min_size, min(self.max_size, n) + 1, dtype="i")
        starts = xp.arange(n, dtype="i")[:, None]
        ends = starts + sizes[None, :]
        fits = ends <= n
        # Row-major masking keeps the order: by start, then by end.
        return xp.stack([xp.broadcast_to(starts, ends.shape)[fits], ends[fits]], axis=1)

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        xp = ops.xp
        parts = []
        lengths = []
        for doc in docs:
            n = len(doc)
            widest = min(self.max_size, n)
            if widest < self.min_size:
                lengths.append(0)
                continue
            rows = self._rows(n, xp)
            parts.append(rows)
            lengths.append(int(rows.shape[0]))
        if not parts:
            return _empty(ops, len(lengths))
        data = ops.asarray2i(xp.concatenate(parts, axis=0))
        return Ragged(data, ops.asarray1i(numpy.asarray(lengths, dtype="i")))

    def __repr__(self) -> str:
        return f"NgramSuggester(min_size={self.min_size}, max_size={self.max_size})"


class NounChunkSuggester:
    """One span per noun chunk (`doc.noun_chunks`)."""

    def __init__(self) -> None:
        self.requires = ["token.dep"]

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        pairs_per_doc = []
        for doc in docs:
            if len(doc) == 0:
                pairs_per_doc.append([])
                continue
            if not doc.has_annotation("DEP"):
                raise ValueError(
                    Errors.E062.format(
                        where="spacy-spanbert.noun_chunk_suggester.v1",
                        kind="noun-chunk",
                        requirement="a dependency parse",
                        text=doc.text[:40],
                        components="a 'parser'",
                        example="nlp.add_pipe('parser', source=spacy.load('en_core_web_sm'), before='spanbert')",
                    )
                )
            try:
                chunks = doc.noun_chunks
                pairs_per_doc.append([(chunk.start, chunk.end) for chunk in chunks])
            except NotImplementedError as err:
                raise ValueError(Errors.E063.format(lang=doc.vocab.lang, err=err)) from err
        return _from_pairs(pairs_per_doc, ops)

    def __repr__(self) -> str:
        return "NounChunkSuggester()"


class SentenceSuggester:
    """One span per sentence (`doc.sents`)."""

    def __init__(self) -> None:
        self.requires = ["token.is_sent_start"]

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        xp = ops.xp
        parts = []
        lengths = []
        for doc in docs:
            n = len(doc)
            if n == 0:
                lengths.append(0)
                continue
            if not doc.has_annotation("SENT_START"):
                raise ValueError(
                    Errors.E062.format(
                        where="spacy-spanbert.sentence_suggester.v1",
                        kind="sentence",
                        requirement="sentence boundaries",
                        text=doc.text[:40],
                        components="a 'sentencizer', 'senter' or 'parser'",
                        example="nlp.add_pipe('sentencizer', before='spanbert')",
                    )
                )
            if "sents" in doc.user_hooks:
                pairs = [(sent.start, sent.end) for sent in doc.sents]
                rows = ops.asarray2i(numpy.asarray(pairs, dtype="i").reshape((-1, 2)))
            else:
                # Same rule as Doc.sents: token 0 always starts a sentence,
                # any later token starts one when its sent_start is 1.
                flags = ops.asarray(doc.to_array("SENT_START").reshape((-1,)))
                starts = xp.nonzero(flags[1:] == 1)[0].astype("i") + 1
                starts = xp.concatenate([xp.zeros((1,), dtype="i"), starts])
                ends = xp.concatenate([starts[1:], xp.asarray([n], dtype="i")])
                rows = xp.stack([starts, ends], axis=1)
            parts.append(rows)
            lengths.append(int(rows.shape[0]))
        if not parts:
            return _empty(ops, len(lengths))
        data = ops.asarray2i(xp.concatenate(parts, axis=0))
        return Ragged(data, ops.asarray1i(numpy.asarray(lengths, dtype="i")))

    def __repr__(self) -> str:
        return "SentenceSuggester()"


class EntitySuggester:
    """One span per entity (`doc.ents`), optionally only some labels."""

    def __init__(self, labels: Optional[List[str]] = None) -> None:
        self.labels: Optional[List[str]] = list(labels) if labels is not None else None
        self._label_set = frozenset(self.labels) if self.labels is not None else None
        self.requires = ["doc.ents"]

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        labels = self._label_set
        pairs_per_doc = []
        for doc in docs:
            pairs_per_doc.append([(ent.start, ent.end) for ent in doc.ents if labels is None or ent.label_ in labels])
        return _from_pairs(pairs_per_doc, ops)

    def __repr__(self) -> str:
        return f"EntitySuggester(labels={self.labels!r})"


_PATTERN_KEY = "SPANBERT_SUGGESTION"


class PatternSuggester:
    """One span per match of token patterns in spaCy's `Matcher` syntax,
    overlapping matches included."""

    def __init__(self, patterns: List[List[Dict[str, Any]]]) -> None:
        self.patterns = copy.deepcopy(list(patterns))
        self.requires: List[str] = []
        # id(vocab) -> (vocab, matcher); holding the vocab keeps the id valid.
        self._matchers: Dict[int, Tuple[Vocab, Matcher]] = {}

    def _matcher(self, vocab: Vocab) -> Matcher:
        cached = self._matchers.get(id(vocab))
        if cached is None or cached[0] is not vocab:
            matcher = Matcher(vocab)
            matcher.add(_PATTERN_KEY, copy.deepcopy(self.patterns))
            cached = (vocab, matcher)
            self._matchers[id(vocab)] = cached
        return cached[1]

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        pairs_per_doc = []
        for doc in docs:
            if len(doc) == 0:
                pairs_per_doc.append([])
                continue
            try:
                matches = self._matcher(doc.vocab)(doc)
            except ValueError as err:
                raise ValueError(Errors.E064.format(err=err)) from err
            pairs_per_doc.append([(start, end) for _, start, end in matches])
        return _from_pairs(pairs_per_doc, ops)

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_matchers"] = {}
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._matchers = {}

    def __repr__(self) -> str:
        return f"PatternSuggester(patterns={self.patterns!r})"


class MergedSuggester:
    """The union of several suggesters' spans, per doc."""

    def __init__(self, suggesters: List[Any]) -> None:
        self.suggesters = list(suggesters)
        requires: List[str] = []
        for child in self.suggesters:
            requires.extend(getattr(child, "requires", None) or [])
        self.requires = list(dict.fromkeys(requires))

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        ops = _ops(ops)
        xp = ops.xp
        docs = list(docs)
        all_rows = []
        all_ids = []
        for child in self.suggesters:
            where = f"spacy-spanbert.merged_suggester.v1 (child {child!r})"
            data, lengths = _as_rows(child(docs, ops=ops), ops, where, n_docs=len(docs))
            all_rows.append(data)
            all_ids.append(_doc_ids(lengths, ops))
        data = xp.concatenate(all_rows, axis=0)
        doc_ids = xp.concatenate(all_ids, axis=0)
        return _canonical(data, doc_ids, len(docs), ops)

    def __repr__(self) -> str:
        return f"MergedSuggester(suggesters={self.suggesters!r})"


# ---------------------------------------------------------------------------
# Registered builders
# ---------------------------------------------------------------------------


@registry.misc("spacy-spanbert.ngram_suggester.v1")
def build_ngram_suggester(min_size: int = 1, max_size: int = 8) -> Suggester:
    """Suggest every span of `min_size` to `max_size` tokens.

    min_size (int): The fewest tokens in a span; at least 1.
    max_size (int): The most tokens in a span; at least `min_size`.
    RETURNS (Suggester): The suggester.
    """
    if not (_is_int(min_size) and _is_int(max_size)) or min_size < 1 or max_size < min_size:
        raise ValueError(Errors.E065.format(min_size=min_size, max_size=max_size))
    return NgramSuggester(int(min_size), int(max_size))


@registry.misc("spacy-spanbert.noun_chunk_suggester.v1")
def build_noun_chunk_suggester() -> Suggester:
    """Suggest the noun chunks of each doc (`doc.noun_chunks`). Needs a
    dependency parser before `spanbert` in the pipeline and a language with
    a noun-chunk iterator.

    RETURNS (Suggester): The suggester; its `requires` is ["token.dep"].
    """
    return NounChunkSuggester()


@registry.misc("spacy-spanbert.sentence_suggester.v1")
def build_sentence_suggester() -> Suggester:
    """Suggest one span per sentence (`doc.sents`). Needs a `sentencizer`,
    `senter` or `parser` before `spanbert` in the pipeline.

    RETURNS (Suggester): The suggester; its `requires` is
        ["token.is_sent_start"].
    """
    return SentenceSuggester()


@registry.misc("spacy-spanbert.entity_suggester.v1")
def build_entity_suggester(labels: Optional[List[str]] = None) -> Suggester:
    """Suggest the named entities of each doc (`doc.ents`). Docs without
    entities get no spans.

    labels (Optional[List[str]]): Only entities with these labels; None
        (default) for all entities.
    RETURNS (Suggester): The suggester; its `requires` is ["doc.ents"].
    """
    if labels is not None:
        if (
            isinstance(labels, str)
            or not isinstance(labels, (list, tuple))
            or not labels
            or not all(isinstance(label, str) for label in labels)
        ):
            raise ValueError(Errors.E066.format(labels=labels))
    return EntitySuggester(labels)


@registry.misc("spacy-spanbert.pattern_suggester.v1")
def build_pattern_suggester(patterns: List[List[Dict[str, Any]]]) -> Suggester:
    """Suggest the matches of token patterns in spaCy's `Matcher` syntax,
    e.g. `[[{"POS": "PROPN", "OP": "+"}], [{"LOWER": "new"}, {"IS_TITLE": true}]]`.
    All matches are kept, overlapping ones included. The patterns are checked
    here; the `Matcher` itself is built on the first call, for the docs' vocab.

    patterns (List[List[Dict[str, Any]]]): The token patterns; each one is a
        non-empty list of token specifications.
    RETURNS (Suggester): The suggester.
    """
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise ValueError(Errors.E067.format(patterns=patterns))
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, (list, tuple)) or not pattern:
            raise ValueError(Errors.E068.format(i=i, pattern=pattern))
    patterns = [list(pattern) for pattern in patterns]
    try:
        Matcher(Vocab(), validate=True).add(_PATTERN_KEY, copy.deepcopy(patterns))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(Errors.E069.format(err=err)) from err
    return PatternSuggester(patterns)


@registry.misc("spacy-spanbert.merged_suggester.v1")
def build_merged_suggester(suggesters: Union[List[Suggester], Dict[str, Any]]) -> Suggester:
    """Suggest the union of several suggesters' spans, deduplicated and
    sorted by (start, end) per doc. spaCy's own suggesters (e.g.
    `spacy.ngram_range_suggester.v1`) work as children too. In a config, the
    children are blocks under a declared `suggesters` section:
    `[components.spanbert.suggester.suggesters]` followed by
    `[components.spanbert.suggester.suggesters.*.ngrams]` (or named blocks
    such as `[components.spanbert.suggester.suggesters.ngrams]`); confection
    passes them as a dict, which is taken in section order.

    suggesters (Union[List[Suggester], Dict[str, Any]]): The suggesters to
        merge, at least one; a list, or the dict a config section gives.
    RETURNS (Suggester): The suggester; its `requires` is the union of the
        children's.
    """
    children = _merge_children(suggesters)
    if not children:
        raise ValueError(Errors.E070.format(suggesters=suggesters))
    for child in children:
        if not callable(child):
            raise ValueError(Errors.E071.format(child=child))
    return MergedSuggester(children)


def _merge_children(suggesters: Any) -> List[Any]:
    """The merged suggester's children as a list. A config gives a dict:
    `{"*": {name: suggester}}` for `suggesters.*.name` blocks, or
    `{name: suggester}` for `suggesters.name` blocks."""
    if isinstance(suggesters, dict):
        children: List[Any] = []
        for key, value in suggesters.items():
            if key == "*" and isinstance(value, dict):
                children.extend(value.values())
            elif key == "*" and isinstance(value, (list, tuple)):
                children.extend(value)
            else:
                children.append(value)
        return children
    if isinstance(suggesters, (list, tuple)):
        return list(suggesters)
    return []


class PresetSpansSuggester:
    """spaCy's `preset_spans_suggester` with a doc lacking the group read as
    "no candidates" (spaCy's raises KeyError), so such docs get an empty
    `spanbert` group instead of stopping the pipeline."""

    def __init__(self, spans_key: str):
        self.spans_key = spans_key
        self.requires: List[str] = []

    def __call__(self, docs: Iterable[Doc], *, ops: Optional[Ops] = None) -> Ragged:
        pairs_per_doc = []
        for doc in docs:
            group = doc.spans[self.spans_key] if self.spans_key in doc.spans else []
            pairs_per_doc.append(sorted({(s.start, s.end) for s in group}))
        return _from_pairs(pairs_per_doc, _ops(ops))


def adapt_suggester(suggester: Callable) -> Callable:
    """RETURNS (Callable): `suggester`, or a tolerant equivalent of spaCy's
    `spacy.preset_spans_suggester.v1` (which fails on docs without the group)."""
    from spacy.pipeline.spancat import preset_spans_suggester

    if isinstance(suggester, functools.partial) and suggester.func is preset_spans_suggester:
        return PresetSpansSuggester(suggester.keywords.get("spans_key", "sc"))
    return suggester
