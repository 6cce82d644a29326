import warnings
from functools import partial

import numpy
import pytest
import spacy
from conftest import make_nlp, round_trip, train_losses
from numpy.testing import assert_allclose
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import Adam

import spacy_spanbert.ner  # noqa: F401  (registers the head)
from spacy_spanbert.ner import SpanBertNER

FLAT = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]),
    ("The German chancellor visited Paris .", [(4, 5, "LOC")]),
    ("Apple is a company in New York .", [(0, 1, "ORG"), (5, 7, "LOC")]),
]
NESTED = [
    ("The city of New York is big .", [(0, 5, "LOC"), (3, 5, "LOC"), (3, 4, "MISC")]),
    ("The president of France met Merkel .", [(0, 4, "PER"), (3, 4, "LOC"), (5, 6, "PER")]),
    ("Apple is a company in Paris .", [(0, 1, "ORG"), (5, 6, "LOC")]),
]


def _flat_examples(nlp, data=FLAT):
    examples = []
    for text, ents in data:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _nested_examples(nlp, data=NESTED):
    examples = []
    for text, spans in data:
        ref = nlp.make_doc(text)
        ref.spans["spanbert_ner"] = [Span(ref, s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _make(nlp_factory, spanbert_config=None, **ner_config):
    nlp = nlp_factory(spanbert_config)
    nlp.add_pipe("spanbert_ner", config=ner_config)
    return nlp


_train = partial(train_losses, name="spanbert_ner", n_iter=60, lr=0.001)


def _ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def _group(doc):
    return sorted((s.start, s.end, s.label_) for s in doc.spans["spanbert_ner"])


@pytest.fixture(scope="module")
def trained_flat(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner")
    examples = _flat_examples(nlp)
    history = _train(nlp, examples)
    return nlp, history


def test_ner_add_pipe(nlp_factory):
    nlp = _make(nlp_factory)
    ner = nlp.get_pipe("spanbert_ner")
    assert isinstance(ner, SpanBertNER)
    assert nlp.get_pipe_meta("spanbert_ner").assigns == ["doc.ents", "doc.spans"]
    assert ner.spans_key == "spanbert_ner"


def test_ner_error_before_initialize(nlp_factory):
    nlp = _make(nlp_factory)
    ner = nlp.get_pipe("spanbert_ner")
    with pytest.raises(ValueError, match="spanbert_ner.*initialize"):
        ner.predict([nlp.make_doc("Angela Merkel met Macron .")])


def test_ner_labels_inferred(nlp_factory):
    nlp = _make(nlp_factory)
    nlp.initialize(lambda: _flat_examples(nlp))
    ner = nlp.get_pipe("spanbert_ner")
    assert ner.labels == ("LOC", "ORG", "PER")
    assert ner.model.get_dim("nO") == 4


def test_ner_labels_inferred_nested(nlp_factory):
    nlp = _make(nlp_factory)
    nlp.initialize(lambda: _nested_examples(nlp))
    assert nlp.get_pipe("spanbert_ner").labels == ("LOC", "MISC", "ORG", "PER")


def test_ner_labels_given_in_config(nlp_factory):
    nlp = _make(nlp_factory, labels=["PER", "GPE"])
    nlp.initialize(lambda: _flat_examples(nlp))
    ner = nlp.get_pipe("spanbert_ner")
    assert ner.labels == ("PER", "GPE")
    assert ner.model.get_dim("nO") == 3


def test_ner_labels_given_to_initialize(nlp_factory):
    nlp = _make(nlp_factory)
    nlp.get_pipe("spanbert_ner").add_label("X")
    nlp.initialize(lambda: _flat_examples(nlp))
    assert nlp.get_pipe("spanbert_ner").labels == ("X",)


def test_ner_add_label_after_initialize(nlp_factory):
    nlp = _make(nlp_factory)
    nlp.initialize(lambda: _flat_examples(nlp))
    ner = nlp.get_pipe("spanbert_ner")
    assert ner.add_label("PER") == 0
    with pytest.raises(ValueError, match="spanbert_ner: cannot add the label 'NEW'"):
        ner.add_label("NEW")


def test_ner_no_labels(nlp_factory):
    nlp = _make(nlp_factory)
    examples = [Example(nlp.make_doc("Hello there ."), nlp.make_doc("Hello there ."))]
    with pytest.raises(ValueError, match="spanbert_ner: no labels"):
        nlp.initialize(lambda: examples)


@pytest.mark.parametrize("text", ["", "Hello"])
def test_ner_empty_and_one_token_docs(nlp_factory, text):
    nlp = _make(nlp_factory)
    examples = _flat_examples(nlp)
    nlp.initialize(lambda: examples)
    doc = nlp(text)
    group = doc.spans["spanbert_ner"]
    assert group.attrs["scores"].dtype == numpy.float32
    assert len(group.attrs["scores"]) == len(group)
    losses = nlp.update([Example(nlp.make_doc(text), nlp.make_doc(text))], sgd=Adam(0.001))
    assert numpy.isfinite(losses["spanbert_ner"])


def test_ner_zero_candidates(nlp_factory):
    suggester = {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 3, "max_size": 3}
    nlp = _make(nlp_factory, {"model": {"suggester": suggester}})
    examples = _flat_examples(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = nlp.initialize(lambda: examples)
    docs = list(nlp.pipe(["Hi there", "Hi", "One two three four"]))
    assert [len(d.spans["spanbert_ner"].attrs["scores"]) for d in docs] == [len(d.spans["spanbert_ner"]) for d in docs]
    assert len(docs[0].spans["spanbert_ner"]) == 0 and len(docs[1].spans["spanbert_ner"]) == 0
    # every doc of the batch without candidates
    small = [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in ["Hi there", "Hi"]]
    losses = nlp.update(small, sgd=optimizer)
    assert losses["spanbert_ner"] == 0.0
    # some docs with and some without
    losses = nlp.update(small + examples[:1], sgd=optimizer)
    assert losses["spanbert_ner"] > 0.0


def test_ner_loss_is_summed_over_candidates(nlp_factory):
    """A candidate's gradient must not shrink with the number of other
    candidates in the batch (as spaCy's spancat and textcat): averaging over
    the ~8 candidates per token left spanbert and the transformer untrained."""
    nlp = _make(nlp_factory)
    examples = _flat_examples(nlp)
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("spanbert_ner")

    def loss_and_grad(batch):
        docs = [eg.predicted for eg in batch]
        for name in ("transformer", "spanbert"):
            docs = list(nlp.get_pipe(name).pipe(docs))
        return ner.get_loss(batch, ner.predict(docs))

    one_loss, one_grad = loss_and_grad(examples[:1])
    all_loss, all_grad = loss_and_grad(examples)
    n_first = one_grad.shape[0]
    assert all_grad.shape[0] > 2 * n_first
    assert_allclose(all_grad[:n_first], one_grad, rtol=1e-4, atol=1e-7)
    assert all_loss > one_loss
    # softmax cross-entropy rows: they sum to zero and are not scaled down
    assert_allclose(one_grad.sum(1), 0.0, atol=1e-5)
    assert numpy.abs(one_grad).max() > 0.05


def test_ner_predict_is_pure(nlp_factory):
    nlp = _make(nlp_factory)
    nlp.initialize(lambda: _flat_examples(nlp))
    doc = nlp.get_pipe("spanbert")(nlp.get_pipe("transformer")(nlp.make_doc("Angela Merkel met Macron .")))
    indices, probs = nlp.get_pipe("spanbert_ner").predict([doc])
    assert "spanbert_ner" not in doc.spans
    assert probs.shape == (len(doc.spans["spanbert"]), 4)
    assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_ner_overfitting_flat(trained_flat):
    nlp, history = trained_flat
    assert history[-1] < history[0] * 0.1
    for text, ents in FLAT:
        doc = nlp(text)
        assert _ents(doc) == sorted(ents)
        assert set(ents) <= set(_group(doc))


def test_ner_overfitting_nested(nlp_factory):
    nlp = _make(nlp_factory)
    history = _train(nlp, _nested_examples(nlp))
    assert history[-1] < history[0] * 0.1
    for text, spans in NESTED:
        doc = nlp(text)
        assert _group(doc) == sorted(spans)
        ents = _ents(doc)
        for (_, e1, _), (s2, _, _) in zip(ents, ents[1:]):
            assert e1 <= s2


def test_ner_serialization_round_trips(trained_flat, tmp_path):
    nlp, _ = trained_flat
    texts = [text for text, _ in FLAT]
    expected = [(_ents(d), d.spans["spanbert_ner"].attrs["scores"]) for d in nlp.pipe(texts)]

    def check(other):
        for doc, (ents, scores) in zip(other.pipe(texts), expected):
            assert _ents(doc) == ents
            assert_allclose(doc.spans["spanbert_ner"].attrs["scores"], scores, atol=1e-5)

    for how in ("disk", "bytes", "pickle"):
        (tmp_path / how).mkdir()
        check(round_trip(nlp, how, tmp_path / how))


@pytest.mark.parametrize("overwrite", [False, True])
def test_ner_entity_ruler(trained_flat, overwrite):
    nlp, _ = trained_flat
    ner = nlp.get_pipe("spanbert_ner")
    ruler = nlp.add_pipe("entity_ruler", before="spanbert_ner")
    ruler.add_patterns([{"label": "THING", "pattern": "Merkel met"}])
    ner.cfg["overwrite"] = overwrite
    try:
        doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    finally:
        ner.cfg["overwrite"] = False
        nlp.remove_pipe("entity_ruler")
    ents = _ents(doc)
    if overwrite:
        assert ents == [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]
    else:
        # Angela Merkel overlaps the ruler's entity, so it is dropped
        assert ents == [(1, 3, "THING"), (3, 5, "PER"), (6, 7, "LOC")]


@pytest.mark.parametrize("overwrite", [False, True])
def test_ner_no_span_over_threshold_still_sets_outside_tags(trained_flat, overwrite):
    """With nothing to decode, the tokens outside the kept entities are still
    tagged "O" (not left missing), and a ruler's entities stay unless
    overwrite is set."""
    nlp, _ = trained_flat
    ner = nlp.get_pipe("spanbert_ner")
    ruler = nlp.add_pipe("entity_ruler", before="spanbert_ner")
    ruler.add_patterns([{"label": "THING", "pattern": "Merkel met"}])
    threshold = ner.cfg["threshold"]
    ner.cfg["overwrite"], ner.cfg["threshold"] = overwrite, 1.01
    try:
        doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    finally:
        ner.cfg["overwrite"], ner.cfg["threshold"] = False, threshold
        nlp.remove_pipe("entity_ruler")
    assert len(doc.spans[ner.spans_key]) == 0
    assert _ents(doc) == ([] if overwrite else [(1, 3, "THING")])
    outside = [t.ent_iob_ for t in doc if not t.ent_type_]
    assert outside == ["O"] * len(outside) and outside


def test_ner_greedy_decode_tie_break(nlp_factory):
    nlp = _make(nlp_factory, labels=["A", "B"])
    ner = nlp.get_pipe("spanbert_ner")
    doc = nlp.make_doc("one two three four")
    spans = [Span(doc, 1, 3, label="A"), Span(doc, 0, 2, label="B"), Span(doc, 2, 4, label="A")]
    ner._set_ents(doc, spans, numpy.asarray([0.9, 0.9, 0.95], dtype="f"))
    assert _ents(doc) == [(0, 2, "B"), (2, 4, "A")]


def test_ner_scorer_keys(trained_flat):
    nlp, _ = trained_flat
    scores = nlp.evaluate(_flat_examples(nlp))
    assert scores["ents_f"] == pytest.approx(1.0)
    assert "ents_per_type" in scores
    for key in ("spans_spanbert_ner_p", "spans_spanbert_ner_r", "spans_spanbert_ner_f"):
        assert key in scores
    assert scores["spans_spanbert_ner_r"] == pytest.approx(1.0)


def test_ner_scorer_registered():
    scorer = spacy.registry.scorers.get("spacy-spanbert.ner_scorer.v1")()
    assert scorer is spacy_spanbert.ner.score_spanbert_ner


def test_ner_warns_about_unreachable_gold(nlp_factory):
    suggester = {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 1, "max_size": 1}
    nlp = _make(nlp_factory, {"model": {"suggester": suggester}})
    with pytest.warns(UserWarning, match=r"spanbert_ner: 3 of 6 gold spans .*max_size") as record:
        nlp.initialize(lambda: _flat_examples(nlp))
    assert sum("gold spans" in str(w.message) for w in record) == 1


def test_ner_no_warning_when_reachable(nlp_factory):
    nlp = _make(nlp_factory)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        nlp.initialize(lambda: _flat_examples(nlp))


def test_ner_multiprocess_equals_sequential(trained_flat):
    nlp, _ = trained_flat
    texts = [text for text, _ in FLAT] * 2
    sequential = [(_ents(d), _group(d)) for d in nlp.pipe(texts)]
    parallel = [(_ents(d), _group(d)) for d in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert parallel == sequential


def test_ner_replace_listeners(nlp_factory):
    nlp = _make(nlp_factory)
    examples = _flat_examples(nlp)
    _train(nlp, examples, n_iter=5)
    text = FLAT[0][0]
    expected = nlp(text).spans["spanbert_ner"].attrs["scores"]
    nlp.replace_listeners("spanbert", "spanbert_ner", ["model.tok2vec"])
    assert nlp.get_pipe("spanbert").listening_components == []
    assert_allclose(nlp(text).spans["spanbert_ner"].attrs["scores"], expected, atol=1e-5)
    losses = nlp.update(examples, sgd=Adam(0.001))
    assert losses["spanbert_ner"] > 0.0


def _greedy_reference(n_tokens, kept, spans, scores):
    """The greedy decode spelled out: best score first, ties by (start, end)."""
    rounded = [round(float(x), 4) for x in scores]
    taken = [False] * n_tokens
    for ent in kept:
        for t in range(ent.start, ent.end):
            taken[t] = True
    kept = list(kept)
    for i in sorted(range(len(spans)), key=lambda i: (-rounded[i], spans[i].start, spans[i].end)):
        if not any(taken[spans[i].start : spans[i].end]):
            for t in range(spans[i].start, spans[i].end):
                taken[t] = True
            kept.append(spans[i])
    return sorted((s.start, s.end, s.label_) for s in kept)


@pytest.mark.parametrize("overwrite", [False, True])
def test_ner_greedy_decode_matches_reference(nlp_factory, overwrite):
    nlp = _make(nlp_factory, labels=["A", "B"])
    ner = nlp.get_pipe("spanbert_ner")
    ner.cfg["overwrite"] = overwrite
    rng = numpy.random.default_rng(0)
    for trial in range(50):
        doc = nlp.make_doc(" ".join(f"w{i}" for i in range(int(rng.integers(1, 15)))))
        doc.ents = [Span(doc, 0, 1, label="PRE")] if trial % 3 == 0 else []
        spans = []
        for _ in range(int(rng.integers(0, 30))):
            start = int(rng.integers(0, len(doc)))
            end = int(rng.integers(start + 1, min(len(doc), start + 4) + 1))
            spans.append(Span(doc, start, end, label=str(rng.choice(["A", "B"]))))
        # coarse scores, so that many tie
        scores = numpy.asarray(rng.integers(5, 10, len(spans)) / 10, dtype="f")
        expected = _greedy_reference(len(doc), [] if overwrite else list(doc.ents), spans, scores)
        ner._set_ents(doc, spans, scores)
        assert _ents(doc) == expected


@pytest.mark.parametrize("trans1,trans2", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("with_out", [False, True])
def test_torch_gemm_equals_numpy_gemm(trans1, trans2, with_out):
    from thinc.api import NumpyOps

    from spacy_spanbert.layers.torch_gemm import TorchGemmOps

    rng = numpy.random.RandomState(0)
    x = rng.randn(*((7, 5) if not trans1 else (5, 7))).astype("float32")
    y = rng.randn(*((5, 3) if not trans2 else (3, 5))).astype("float32")
    expected = NumpyOps().gemm(x, y, trans1=trans1, trans2=trans2)
    if with_out:
        out = numpy.zeros((7, 3), dtype="float32")
        got = TorchGemmOps().gemm(x, y, out=out, trans1=trans1, trans2=trans2)
        assert got is out
    else:
        got = TorchGemmOps().gemm(x, y, trans1=trans1, trans2=trans2)
    numpy.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # A non-contiguous `out` is filled by copy; other dtypes go to thinc's
    # own gemm, which refuses them exactly as it would without TorchGemmOps.
    out_t = numpy.zeros((3, 7), dtype="float32").T
    numpy.testing.assert_allclose(
        TorchGemmOps().gemm(x, y, out=out_t, trans1=trans1, trans2=trans2), expected, rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="float32"):
        TorchGemmOps().gemm(x.astype("float64"), y.astype("float64"), trans1=trans1, trans2=trans2)


def test_ner_scorer_uses_torch_gemm_and_matches_numpy_ops():
    """The NER head's scorer runs its products through TorchGemmOps on CPU;
    forward and backward equal the same layers on thinc's NumpyOps."""
    from thinc.api import NumpyOps

    from spacy_spanbert.architectures import build_span_classifier
    from spacy_spanbert.layers.torch_gemm import TorchGemmOps

    scorer = build_span_classifier(hidden_width=16, nO=4).get_ref("scorer")
    assert all(isinstance(node.ops, TorchGemmOps) for node in scorer.walk())
    scorer.initialize(X=numpy.zeros((2, 12), dtype="float32"))
    X = numpy.random.RandomState(1).randn(300, 12).astype("float32")
    dY = numpy.random.RandomState(2).randn(300, 4).astype("float32")
    fast, bp_fast = scorer(X, is_train=False)
    d_fast = bp_fast(dY)
    for node in scorer.walk():
        node.ops = NumpyOps()
    ref, bp_ref = scorer(X, is_train=False)
    numpy.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(d_fast, bp_ref(dY), rtol=1e-4, atol=1e-5)
