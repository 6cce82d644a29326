"""The span-vector contract on `Doc.spans`: the candidate group `spanbert`
writes (`attrs["vectors"]`, `attrs["doc_vector"]`, `attrs["offsets"]`), and
the ways users read it back (`Span._.spanbert_vector`, and `span.vector` /
`span.similarity` through `doc.user_span_hooks`)."""

from typing import Any, Dict, List, Optional

import numpy
from spacy.tokens import Doc, Span, SpanGroup

# The span group `spanbert` writes its candidates to, unless `spans_key` says otherwise.
DEFAULT_SPANS_KEY = "spanbert"
SPAN_VECTOR_EXTENSION = "spanbert_vector"


def span_group_from_rows(doc: Doc, name: str, rows: numpy.ndarray, attrs: Dict) -> SpanGroup:
    """A group of unlabelled spans of `doc`, one per [start, end) token row,
    in row order.

    `Span(doc, start, end)` rather than `doc[start:end]`: the slice goes
    through spaCy's Python-level slice normalisation, several times as costly,
    and the group holds about eight spans per token.

    doc (Doc): The doc the spans belong to.
    name (str): The group's name.
    rows (numpy.ndarray): (n, 2) int token offsets, 0 <= start < end <= len(doc).
    attrs (Dict): The group's attrs.
    RETURNS (SpanGroup): The group.
    """
    spans = [Span(doc, start, end) for start, end in rows.tolist()]
    return SpanGroup(doc, name=name, attrs=attrs, spans=spans)


def group_offsets(group: SpanGroup) -> numpy.ndarray:
    """The (n, 2) int32 [start, end) token offsets of a group's spans, in
    group order: `attrs["offsets"]` when it matches the group's length (what
    `spanbert` writes), else read span by span (a group made by hand)."""
    offsets = group.attrs.get("offsets")
    if offsets is None or len(offsets) != len(group):
        offsets = [(span.start, span.end) for span in group]
    return numpy.asarray(offsets, dtype="int32").reshape((-1, 2))


def rows_of_span(group: SpanGroup, span: Span) -> List[int]:
    """The rows of `group` whose spans have `span`'s token offsets.

    group (SpanGroup): A group of the span's doc.
    span (Span): The span.
    RETURNS (List[int]): The row indices, in group order.
    """
    offsets = group_offsets(group)
    return numpy.flatnonzero((offsets[:, 0] == span.start) & (offsets[:, 1] == span.end)).tolist()


def find_span_vector(span: Span) -> Optional[numpy.ndarray]:
    """The getter of `Span._.spanbert_vector`: the stored vector of `span`
    from any span group with `attrs["vectors"]` that holds a span with the
    same offsets (and label, when the span has one); None if there is none.

    span (Span): The span.
    RETURNS (Optional[numpy.ndarray]): Its vector, or None.
    """
    for group in span.doc.spans.values():
        vectors = group.attrs.get("vectors")
        if vectors is None or len(group) == 0:
            continue
        for i in rows_of_span(group, span):
            if not span.label or span.label == group[i].label:
                return numpy.asarray(vectors[i])
    return None


def install_extensions() -> None:
    """Register `Span._.spanbert_vector` once (never forced)."""
    if not Span.has_extension(SPAN_VECTOR_EXTENSION):
        Span.set_extension(SPAN_VECTOR_EXTENSION, getter=find_span_vector)


class SpanVectorHooks:
    """`doc.user_span_hooks` entries that make `span.vector` and
    `span.similarity` use the vectors of one span group on a processed doc.
    A span that is not a candidate has no span vector: its `span.vector` is
    spaCy's default (the mean of its token vectors, another vector space), as
    documented; `span._.spanbert_vector` returns None for it."""

    def __init__(self, spans_key: str):
        self.spans_key = spans_key

    def _lookup(self, span: Span) -> Optional[numpy.ndarray]:
        group = span.doc.spans[self.spans_key] if self.spans_key in span.doc.spans else None
        if group is None or "vectors" not in group.attrs:
            return None
        rows = rows_of_span(group, span)
        return numpy.asarray(group.attrs["vectors"][rows[0]]) if rows else None

    def vector(self, span: Span) -> numpy.ndarray:
        found = self._lookup(span)
        if found is not None:
            return found
        if len(span) == 0:
            return numpy.zeros((span.doc.vocab.vectors_length,), dtype="f")
        return numpy.mean([token.vector for token in span], axis=0)

    def similarity(self, span: Span, other: Any) -> float:
        v1 = self.vector(span)
        v2 = self.vector(other) if isinstance(other, Span) else other.vector
        norm = float(numpy.linalg.norm(v1) * numpy.linalg.norm(v2))
        return float(numpy.dot(v1, v2) / norm) if norm else 0.0
