"""benchmarks/spanmarker.py: SpanMarker's predictions become spaCy entities
(the `spanmarker` system of `accuracy.py ner`; training is a benchmark)."""

import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import spanmarker  # noqa: E402

WORDS = ["Angela", "Merkel", "met", "Macron", "in", "Berlin"]


def _doc(vocab, words=WORDS):
    return Doc(vocab, words=words)


def test_benchmarks_spanmarker_predictions_to_ents():
    doc = _doc(spacy.blank("en").vocab)
    predictions = [
        {"span": ["Angela", "Merkel"], "label": "person", "score": 0.9, "word_start_index": 0, "word_end_index": 2},
        {"span": ["Berlin"], "label": "location", "score": 0.8, "word_start_index": 5, "word_end_index": 6},
        {"span": ["Merkel"], "label": "person", "score": 0.5, "word_start_index": 1, "word_end_index": 2},
    ]
    spanmarker.predictions_to_ents(doc, predictions)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "person"), (5, 6, "location")]
    with pytest.raises(ValueError, match=r"spanmarker: a prediction \[5, 7\) lies outside a doc of 6 words"):
        spanmarker.predictions_to_ents(doc, [{"label": "x", "word_start_index": 5, "word_end_index": 7}])


def test_benchmarks_spanmarker_iob2_tags_tag_set_and_batch_size():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab)
    doc.ents = [Span(doc, 0, 2, "person"), Span(doc, 5, 6, "location")]
    assert spanmarker.iob2_tags(doc) == ["B-person", "I-person", "O", "O", "O", "B-location"]
    assert spanmarker.tag_set([doc]) == ["O", "B-location", "I-location", "B-person", "I-person"]
    # 6 words a sentence: 1,000 words are 167 sentences
    assert spanmarker.batch_sentences([doc, doc], 1000) == 167


def test_benchmarks_spanmarker_model_predictions_become_ents(tiny_bert):
    """A real (untrained, tiny) SpanMarker model: whatever it predicts lands
    on doc.ents as spans of the given words, and empty docs pass through."""
    span_marker = pytest.importorskip("span_marker")
    model = span_marker.SpanMarkerModel.from_pretrained(
        tiny_bert, labels=["O", "B-person", "I-person"], entity_max_length=spanmarker.ENTITY_MAX_LENGTH
    )
    vocab = spacy.blank("en").vocab
    docs = [_doc(vocab), _doc(vocab, []), _doc(vocab, ["Macron"])]
    raw = model.predict([WORDS, ["Macron"]], batch_size=2)
    out = spanmarker.predict(model, docs, batch_size=2)
    assert [len(doc) for doc in out] == [6, 0, 1] and not docs[0].ents
    expected = [sorted((p["word_start_index"], p["word_end_index"], p["label"]) for p in preds) for preds in raw]
    assert [sorted((e.start, e.end, e.label_) for e in doc.ents) for doc in (out[0], out[2])] == expected
