"""The output of `spacy spanbert annotate`: its schema, and the engine-free
`rows(doc)` that turns one processed doc into records.

One table holds every row kind (`OUTPUT_COLUMNS` documents it):

| column | type | value |
|---|---|---|
| doc_id | string | the input's id field, else `"{file}:{line}"` |
| key | string | `"ents"` for `doc.ents`, the span group key, or `"cats"` |
| start, end | int32 | token offsets (null for `cats`) |
| start_char, end_char | int32 | character offsets (null for `cats`) |
| label | string | the span's label (null for `cats`) |
| score | float32 | the component's score for the span, else null |
| text | string | the span's text (null for `cats`) |
| vector | list<float32> | span vector with `vectors=True`, else null |
| cats | map<string, float32> | `doc.cats` on the `cats` row, else null |
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from ...span_vectors import DEFAULT_SPANS_KEY, group_offsets
from .extras import require

ENTS_KEY = "ents"
CATS_KEY = "cats"

# (column, Arrow type, meaning): the fixed Parquet schema of every output file.
OUTPUT_COLUMNS: Tuple[Tuple[str, str, str], ...] = (
    ("doc_id", "string", "the input's id field, else '{file}:{line}'"),
    ("key", "string", "'ents' (doc.ents), a span group key, or 'cats'"),
    ("start", "int32", "first token of the span (null for cats)"),
    ("end", "int32", "token after the span (null for cats)"),
    ("start_char", "int32", "first character of the span (null for cats)"),
    ("end_char", "int32", "character after the span (null for cats)"),
    ("label", "string", "label of the span (null for cats)"),
    ("score", "float32", "the component's score for the span, if it gives one"),
    ("text", "string", "text of the span (null for cats)"),
    ("vector", "list<float32>", "span vector, only when asked (--vectors)"),
    ("cats", "map<string, float32>", "doc.cats, on the one 'cats' row of a doc"),
)
COLUMNS = tuple(name for name, _, _ in OUTPUT_COLUMNS)


def output_schema():
    """The Arrow schema of every output file (see `OUTPUT_COLUMNS`).

    RETURNS (pyarrow.Schema): The schema.
    """
    pa = require("pyarrow", "writing Parquet")
    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "list<float32>": pa.list_(pa.float32()),
        "map<string, float32>": pa.map_(pa.string(), pa.float32()),
    }
    nullable = {"doc_id": False, "key": False}
    return pa.schema(
        [pa.field(name, types[kind], nullable=nullable.get(name, True)) for name, kind, _ in OUTPUT_COLUMNS]
    )


def _per_span_array(group: SpanGroup, name: str, ndim: int) -> Optional[numpy.ndarray]:
    """`group.attrs[name]` if it holds one entry per span, else None."""
    value = group.attrs.get(name)
    if value is None:
        return None
    value = numpy.asarray(value)
    if value.ndim != ndim or len(value) != len(group):
        return None
    return value


class _DocLookups:
    """Scores and vectors of the spans of one doc, built on first use."""

    def __init__(self, doc: Doc):
        self.doc = doc
        self._scores: Optional[Dict[Tuple[int, int, str], float]] = None
        self._vectors: Optional[Dict[Tuple[int, int], numpy.ndarray]] = None

    def score(self, span: Span) -> Optional[float]:
        if self._scores is None:
            self._scores = {}
            for group in self.doc.spans.values():
                scores = _per_span_array(group, "scores", 1)
                if scores is None:
                    continue
                for other, score in zip(group, scores.tolist()):
                    key = (other.start, other.end, other.label_)
                    self._scores[key] = max(score, self._scores.get(key, score))
        return self._scores.get((span.start, span.end, span.label_))

    def vector(self, span: Span) -> Optional[numpy.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            # the encoder's candidate group first, then any other with vectors
            keys = sorted(self.doc.spans, key=lambda key: key != DEFAULT_SPANS_KEY)
            for key in keys:
                group = self.doc.spans[key]
                vectors = _per_span_array(group, "vectors", 2)
                if vectors is None:
                    continue
                for (start, end), row in zip(group_offsets(group).tolist(), vectors):
                    self._vectors.setdefault((start, end), row)
        return self._vectors.get((span.start, span.end))


def _span_row(doc_id: str, key: str, span: Span, score, vector) -> Dict[str, Any]:
    return {
        "doc_id": doc_id,
        "key": key,
        "start": span.start,
        "end": span.end,
        "start_char": span.start_char,
        "end_char": span.end_char,
        "label": span.label_,
        "score": None if score is None else float(score),
        "text": span.text,
        "vector": None if vector is None else numpy.asarray(vector, dtype="float32"),
        "cats": None,
    }


def _group_rows(doc_id: str, key: str, group: SpanGroup, lookups: _DocLookups, vectors: bool) -> List[Dict[str, Any]]:
    """The records of one span group, in group order."""
    scores = _per_span_array(group, "scores", 1)
    own_vectors = _per_span_array(group, "vectors", 2) if vectors else None
    out = []
    for i, span in enumerate(group):
        score = None if scores is None else scores[i]
        if not vectors:
            vector = None
        elif own_vectors is not None:
            vector = own_vectors[i]
        else:
            vector = lookups.vector(span)
        out.append(_span_row(doc_id, key, span, score, vector))
    return out


def rows(doc: Doc, *, doc_id: str, spans_keys: Sequence[str] = (), vectors: bool = False) -> List[Dict[str, Any]]:
    """The output records of one processed doc: one per entity (key "ents"),
    one per span of each group in `spans_keys` (key = the group's key, in group
    order), and one for `doc.cats` (key "cats") if the doc has categories.

    A span's score is its group's `attrs["scores"]` entry; an entity's score is
    the score of the same span and label in any scored group (the
    `spanbert_ner` group), else None. With `vectors`, a span's vector is its
    group's `attrs["vectors"]` row, or the row of the same span in a group
    with vectors (the `spanbert` encoder's candidates first), else None.

    doc (Doc): A processed doc.
    doc_id (str): The id written to every record.
    spans_keys (Sequence[str]): The span groups to write besides `doc.ents`.
    vectors (bool): Write span vectors (float32).
    RETURNS (List[Dict[str, Any]]): Records with the keys of `COLUMNS`.
    """
    lookups = _DocLookups(doc)
    out = []
    for ent in doc.ents:
        vector = lookups.vector(ent) if vectors else None
        out.append(_span_row(doc_id, ENTS_KEY, ent, lookups.score(ent), vector))
    for key in spans_keys:
        if key in doc.spans:
            out.extend(_group_rows(doc_id, key, doc.spans[key], lookups, vectors))
    if doc.cats:
        row = dict.fromkeys(COLUMNS)
        row.update(doc_id=doc_id, key=CATS_KEY, cats={k: float(v) for k, v in doc.cats.items()})
        out.append(row)
    return out


def annotate_batch(
    nlp: Language,
    records: Sequence[Dict[str, str]],
    *,
    spans_keys: Sequence[str] = (),
    vectors: bool = False,
    batch_size: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Run the pipeline over a batch of input records and return their rows.

    nlp (Language): A loaded pipeline.
    records (Sequence[Dict[str, str]]): Records with "doc_id" and "text".
    spans_keys (Sequence[str]): The span groups to write besides `doc.ents`.
    vectors (bool): Write span vectors.
    batch_size (Optional[int]): The `nlp.pipe` batch size.
    RETURNS (List[Dict[str, Any]]): The rows of every record, in order.
    """
    out: List[Dict[str, Any]] = []
    docs = nlp.pipe((record["text"] for record in records), batch_size=batch_size)
    for record, doc in zip(records, docs):
        out.extend(rows(doc, doc_id=record["doc_id"], spans_keys=spans_keys, vectors=vectors))
    return out
