"""spanbert_cleaner drops the candidate spans (or their vectors) after the heads."""

import pytest
import spacy
from conftest import TEXTS, round_trip
from spacy.tokens import DocBin, Span
from spacy.training import Example

from spacy_spanbert.cleaner import SpanBertCleaner


def _examples(nlp):
    examples = []
    for text in TEXTS:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, 0, 1, label="X")]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _pipeline(nlp_factory, **cleaner_config):
    nlp = nlp_factory()
    nlp.add_pipe("spanbert_ner")
    nlp.add_pipe("spanbert_cleaner", config=cleaner_config)
    nlp.initialize(lambda: _examples(nlp))
    return nlp


def _ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.mark.parametrize("keep_spans", [False, True])
def test_cleaner_drops_the_candidates_and_keeps_the_heads_output(nlp_factory, keep_spans):
    nlp = _pipeline(nlp_factory, keep_spans=keep_spans)
    with nlp.select_pipes(disable=["spanbert_cleaner"]):
        full = list(nlp.pipe(TEXTS, batch_size=2))
    cleaned = list(nlp.pipe(TEXTS, batch_size=2))
    for before, after in zip(full, cleaned):
        assert _ents(after) == _ents(before)
        assert "spanbert_ner" in after.spans
        assert "vector" not in after.user_span_hooks and "similarity" not in after.user_span_hooks
        if keep_spans:
            group = after.spans["spanbert"]
            assert [(s.start, s.end) for s in group] == [(s.start, s.end) for s in before.spans["spanbert"]]
            assert "vectors" not in group.attrs and "doc_vector" not in group.attrs
            assert group.attrs["offsets"].shape == (len(group), 2)
        else:
            assert "spanbert" not in after.spans
        # span.vector falls back to spaCy's default (no vectors here) instead of failing
        assert after[0:2].vector.shape == (0,)
    size = lambda docs: len(DocBin(docs=docs, store_user_data=True).to_bytes())  # noqa: E731
    vector_bytes = sum(doc.spans["spanbert"].attrs["vectors"].nbytes for doc in full)
    assert size(full) - size(cleaned) > 0.5 * vector_bytes


def test_cleaner_before_a_head_is_a_clear_error(nlp_factory):
    nlp = nlp_factory()
    nlp.add_pipe("spanbert_ner")
    nlp.add_pipe("spanbert_cleaner", before="spanbert_ner")
    nlp.initialize(lambda: _examples(nlp))
    with pytest.raises(ValueError, match="spanbert listener: .*put any 'spanbert_cleaner' after all heads"):
        nlp("Angela Merkel met Macron .")


@pytest.mark.parametrize("how", ["disk", "bytes"])
def test_cleaner_round_trips(nlp_factory, tmp_path, how):
    nlp = _pipeline(nlp_factory, keep_spans=True)
    loaded = round_trip(nlp, how, tmp_path)
    assert loaded.pipe_names[-1] == "spanbert_cleaner"
    assert loaded.get_pipe("spanbert_cleaner").cfg == {"spans_key": "spanbert", "keep_spans": True}
    doc = loaded(TEXTS[0])
    assert "vectors" not in doc.spans["spanbert"].attrs and len(doc.spans["spanbert"]) > 0


def test_cleaner_other_key_empty_and_missing_groups():
    nlp = spacy.blank("en")
    nlp.add_pipe("spanbert_cleaner", config={"spans_key": "cands"})
    doc = nlp.make_doc("a b c")
    doc.spans["cands"] = [doc[0:1]]
    doc.spans["spanbert"] = [doc[1:2]]
    doc = nlp(doc)
    assert list(doc.spans) == ["spanbert"]  # only its own key
    assert len(nlp("")) == 0 and len(nlp("   ")) == 1  # docs without the group pass through


@pytest.mark.parametrize(
    "config,message", [({"spans_key": ""}, "spans_key must be"), ({"keep_spans": "yes"}, "keep_spans must be")]
)
def test_cleaner_bad_config(config, message):
    with pytest.raises(ValueError, match="spanbert_cleaner: " + message):
        SpanBertCleaner(**config)
