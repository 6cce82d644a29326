"""`span_group_from_rows` writes a large group's spans in SpanGroup's byte
layout: the group must equal one built Span by Span, the way small groups
are built."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span, SpanGroup

from spacy_spanbert import span_vectors
from spacy_spanbert.span_vectors import span_group_from_rows


def _rows(n_tokens, max_width):
    return numpy.asarray([(s, s + w) for s in range(n_tokens) for w in range(1, max_width + 1) if s + w <= n_tokens])


def _fields(group):
    return [(s.start, s.end, s.start_char, s.end_char, s.label, s.kb_id, s.id, s.text) for s in group]


@pytest.mark.parametrize(
    "words,spaces",
    [
        (["Angela", "Merkel", "met", "Macron", "."], [True, True, True, False, False]),
        # odd Unicode, whitespace tokens, no spaces at all
        (["e\u0301t\u00e9", "\n\n", "\U0001f469\u200d\U0001f4bb", "\u05e9\u05dc\u05d5\u05dd", " ", "x"], [False] * 6),
        (["a"], [False]),
    ],
)
@pytest.mark.parametrize("bytes_min_spans", [0, 10**9])
def test_span_group_from_rows_equals_span_by_span(words, spaces, bytes_min_spans, monkeypatch):
    monkeypatch.setattr(span_vectors, "BYTES_MIN_SPANS", bytes_min_spans)
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=spaces)
    rows = _rows(len(doc), 4)
    attrs = {"vectors": numpy.ones((len(rows), 3), dtype="float32"), "offsets": rows}
    group = span_group_from_rows(doc, "cands", rows, attrs)
    reference = SpanGroup(doc, name="cands", spans=[Span(doc, int(s), int(e)) for s, e in rows])
    assert group.name == "cands" and len(group) == len(rows)
    assert _fields(group) == _fields(reference)
    assert group.attrs["vectors"] is attrs["vectors"] and group.attrs["offsets"] is rows
    doc.spans["cands"] = group
    # a DocBin round trip gives the same spans
    restored = next(DocBin(docs=[doc], store_user_data=True).get_docs(doc.vocab))
    assert _fields(restored.spans["cands"]) == _fields(reference)


@pytest.mark.parametrize("bytes_min_spans", [0, 10**9])
def test_span_group_from_rows_empty(bytes_min_spans, monkeypatch):
    monkeypatch.setattr(span_vectors, "BYTES_MIN_SPANS", bytes_min_spans)
    doc = Doc(spacy.blank("en").vocab, words=["a", "b"])
    group = span_group_from_rows(doc, "cands", numpy.zeros((0, 2), dtype="int32"), {"offsets": []})
    assert len(group) == 0 and group.attrs == {"offsets": []}
    empty = Doc(spacy.blank("en").vocab, words=[])
    assert len(span_group_from_rows(empty, "cands", numpy.zeros((0, 2), dtype="int32"), {})) == 0
