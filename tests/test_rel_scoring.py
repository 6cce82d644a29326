"""The relation scorer against hand-computed cases."""

import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example

from spacy_spanbert.rel import ensure_relations_extension, score_relations

TEXT = "angela merkel met emmanuel macron in berlin ."


def _doc(nlp, ents, relations, spans_key=None):
    ensure_relations_extension()
    doc = nlp.make_doc(TEXT)
    spans = [Span(doc, s, e, label=label) for s, e, label in ents]
    if spans_key is None:
        doc.ents = spans
    else:
        doc.spans[spans_key] = spans
    doc._.relations = [{"head": list(h), "tail": list(t), "label": label, "score": 1.0} for h, t, label in relations]
    return doc


@pytest.fixture
def nlp():
    return spacy.blank("en")


GOLD_ENTS = [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]
GOLD_RELS = [((0, 2), (3, 5), "MET"), ((3, 5), (6, 7), "IN"), ((0, 2), (6, 7), "IN")]


def test_rel_scoring_hand_computed(nlp):
    # Predicted: MET right; IN (3,5)->(6,7) right spans and label but berlin
    # typed ORG (boundaries right, strict wrong); a wrong extra IN (6,7)->(0,2).
    pred_ents = [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "ORG")]
    pred_rels = [((0, 2), (3, 5), "MET"), ((3, 5), (6, 7), "IN"), ((6, 7), (0, 2), "IN")]
    eg = Example(_doc(nlp, pred_ents, pred_rels), _doc(nlp, GOLD_ENTS, GOLD_RELS))
    scores = score_relations([eg])
    # strict: tp 1 (MET), fp 2, fn 2
    assert scores["rel_micro_p"] == pytest.approx(1 / 3)
    assert scores["rel_micro_r"] == pytest.approx(1 / 3)
    assert scores["rel_micro_f"] == pytest.approx(1 / 3)
    # boundaries: tp 2 (MET, IN 3,5->6,7), fp 1, fn 1: p = r = f = 2/3
    assert scores["rel_boundaries_f"] == pytest.approx(2 / 3)
    # per label: MET p=r=f=1; IN tp 0 -> f 0; macro 0.5
    assert scores["rel_f_per_type"]["MET"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert scores["rel_f_per_type"]["IN"]["f"] == 0.0
    assert scores["rel_macro_f"] == pytest.approx(0.5)


def test_rel_scoring_direction_matters(nlp):
    eg = Example(_doc(nlp, GOLD_ENTS, [((3, 5), (0, 2), "MET")]), _doc(nlp, GOLD_ENTS, [((0, 2), (3, 5), "MET")]))
    scores = score_relations([eg])
    assert scores["rel_micro_f"] == 0.0 and scores["rel_boundaries_f"] == 0.0


def test_rel_scoring_perfect_over_two_examples(nlp):
    examples = [Example(_doc(nlp, GOLD_ENTS, GOLD_RELS), _doc(nlp, GOLD_ENTS, GOLD_RELS)) for _ in range(2)]
    scores = score_relations(examples)
    assert scores["rel_micro_f"] == pytest.approx(1.0)
    assert scores["rel_macro_f"] == pytest.approx(1.0)
    assert sorted(scores["rel_f_per_type"]) == ["IN", "MET"]


def test_rel_scoring_nothing_anywhere(nlp):
    eg = Example(_doc(nlp, [], []), _doc(nlp, [], []))
    scores = score_relations([eg])
    assert scores["rel_micro_f"] == 0.0 and scores["rel_macro_f"] == 0.0 and scores["rel_f_per_type"] == {}


def test_rel_scoring_types_from_span_group(nlp):
    ents = [(0, 2, "PER"), (1, 2, "PER"), (3, 5, "PER")]
    rels = [((1, 2), (3, 5), "MET")]
    eg = Example(_doc(nlp, ents, rels, spans_key="ents"), _doc(nlp, ents, rels, spans_key="ents"))
    assert score_relations([eg], spans_key="ents")["rel_micro_f"] == pytest.approx(1.0)


def test_rel_scoring_registered():
    scorer = spacy.registry.scorers.get("spacy-spanbert.rel_scorer.v1")()
    assert scorer is score_relations
