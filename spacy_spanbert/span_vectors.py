"""The span-vector contract on `Doc.spans`: the candidate group `spanbert`
writes (`attrs["vectors"]`, `attrs["doc_vector"]`, `attrs["offsets"]`), and
the ways users read it back (`Span._.spanbert_vector`, and `span.vector` /
`span.similarity` through `doc.user_span_hooks`)."""

from typing import Any, Dict, List, Optional

import numpy
import srsly
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span, SpanGroup

# The span group `spanbert` writes its candidates to, unless `spans_key` says otherwise.
DEFAULT_SPANS_KEY = "spanbert"
SPAN_VECTOR_EXTENSION = "spanbert_vector"
# From this many spans on, span_group_from_rows writes the group's bytes.
BYTES_MIN_SPANS = 2048
# One span as `SpanGroup.to_bytes` packs it (struct ">QQQllll"): id, kb_id,
# label, start, end, start_char, end_char, big-endian.
SPAN_STRUCT = numpy.dtype(
    [
        ("id", ">u8"),
        ("kb_id", ">u8"),
        ("label", ">u8"),
        ("start", ">i4"),
        ("end", ">i4"),
        ("start_char", ">i4"),
        ("end_char", ">i4"),
    ]
)


def span_group_from_rows(doc: Doc, name: str, rows: numpy.ndarray, attrs: Dict) -> SpanGroup:
    """A group of unlabelled spans of `doc`, one per [start, end) token row,
    in row order.

    The group holds about eight spans per token. A Python `Span` per
    candidate (each looking up two tokens for its character offsets) makes
    the group the encoder's largest cost after the model on long docs; so a
    large group is written instead in one vectorized step in the byte layout
    of `SpanGroup.to_bytes` (the one `DocBin` stores, which spaCy reads across
    versions) and loaded with `SpanGroup.from_bytes`. Its msgpack round trip
    has a fixed cost per group that the Spans only exceed from about
    `BYTES_MIN_SPANS` spans on (benchmarks/README.md). tests/test_span_vectors.py
    pins both ways to each other.

    doc (Doc): The doc the spans belong to.
    name (str): The group's name.
    rows (numpy.ndarray): (n, 2) int token offsets, 0 <= start < end <= len(doc).
    attrs (Dict): The group's attrs.
    RETURNS (SpanGroup): The group.
    """
    if len(rows) < BYTES_MIN_SPANS:
        return SpanGroup(doc, name=name, attrs=attrs, spans=[Span(doc, start, end) for start, end in rows.tolist()])
    rows = numpy.asarray(rows, dtype="int64").reshape((-1, 2))
    token_chars = doc.to_array([IDX, LENGTH]).astype("int64").reshape((-1, 2))
    records = numpy.zeros((len(rows),), dtype=SPAN_STRUCT)
    records["start"] = rows[:, 0]
    records["end"] = rows[:, 1]
    records["start_char"] = token_chars[rows[:, 0], 0]
    last = token_chars[rows[:, 1] - 1]
    records["end_char"] = last[:, 0] + last[:, 1]
    raw = records.tobytes()
    size = SPAN_STRUCT.itemsize
    spans = [raw[i : i + size] for i in range(0, len(raw), size)]
    group = SpanGroup(doc, name=name).from_bytes(srsly.msgpack_dumps({"name": name, "attrs": {}, "spans": spans}))
    group.attrs.update(attrs)
    return group


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
