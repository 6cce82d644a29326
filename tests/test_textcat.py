import pickle

import numpy
import pytest
import spacy
from conftest import round_trip
from numpy.testing import assert_allclose
from spacy.tokens import SpanGroup
from spacy.training import Example
from thinc.api import Adam, fix_random_seed
from thinc.types import Ragged

from spacy_spanbert.data_classes import SpanBatch
from spacy_spanbert.layers.label_attention import label_attention, predict_with_weights, span_label_attention
from spacy_spanbert.textcat import predict_with_evidence

EXCLUSIVE_MODEL = {"@architectures": "spacy-spanbert.SpanAttentionTextCat.v1", "exclusive_classes": True}
MULTI_MODEL = {"@architectures": "spacy-spanbert.SpanAttentionTextCat.v1", "exclusive_classes": False}

EXCLUSIVE_DATA = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", {"POLITICS": 1.0, "BUSINESS": 0.0, "CULTURE": 0.0}),
    ("The German chancellor visited Paris .", {"POLITICS": 1.0, "BUSINESS": 0.0, "CULTURE": 0.0}),
    ("Apple is a company in New York .", {"POLITICS": 0.0, "BUSINESS": 1.0, "CULTURE": 0.0}),
    ("He said the film was good .", {"POLITICS": 0.0, "BUSINESS": 0.0, "CULTURE": 1.0}),
]
MULTI_DATA = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", {"PERSON": 1.0, "PLACE": 1.0, "OPINION": 0.0}),
    ("The German chancellor visited Paris .", {"PERSON": 0.0, "PLACE": 1.0, "OPINION": 0.0}),
    ("Apple is a company in New York .", {"PERSON": 0.0, "PLACE": 1.0, "OPINION": 0.0}),
    ("He said the film was good .", {"PERSON": 0.0, "PLACE": 0.0, "OPINION": 1.0}),
]


def _nlp(nlp_factory, exclusive=True):
    nlp = nlp_factory()
    if exclusive:
        nlp.add_pipe("textcat", config={"model": EXCLUSIVE_MODEL})
    else:
        nlp.add_pipe("textcat_multilabel", config={"model": MULTI_MODEL})
    return nlp


def _examples(nlp, data):
    return [Example.from_dict(nlp.make_doc(text), {"cats": cats}) for text, cats in data]


def _train(nlp, data, n_iter=50):
    fix_random_seed(0)
    examples = _examples(nlp, data)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)
    losses = []
    for _ in range(n_iter):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(sum(v for k, v in step.items() if k.startswith("textcat")))
    return nlp, losses


@pytest.fixture(scope="module")
def exclusive_trained(tiny_bert):
    from conftest import make_nlp

    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("textcat", config={"model": EXCLUSIVE_MODEL})
    return _train(nlp, EXCLUSIVE_DATA)


def test_textcat_add_pipe(nlp_factory):
    nlp = _nlp(nlp_factory)
    textcat = nlp.get_pipe("textcat")
    assert textcat.model.attrs["multi_label"] is False
    multi = _nlp(nlp_factory, exclusive=False).get_pipe("textcat_multilabel")
    assert multi.model.attrs["multi_label"] is True


def test_textcat_listener_registered(nlp_factory):
    nlp = _nlp(nlp_factory)
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    assert "textcat" in nlp.get_pipe("spanbert").listening_components


def test_textcat_labels_inferred(nlp_factory):
    nlp = _nlp(nlp_factory)
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    textcat = nlp.get_pipe("textcat")
    assert textcat.labels == ("POLITICS", "BUSINESS", "CULTURE")
    assert textcat.model.get_ref("label_attention").get_dim("nO") == 3


def test_textcat_labels_given(nlp_factory):
    nlp = _nlp(nlp_factory)
    for label in ["POLITICS", "BUSINESS", "CULTURE", "SPORT"]:
        nlp.get_pipe("textcat").add_label(label)
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    doc = nlp("Apple is a company .")
    assert set(doc.cats) == {"POLITICS", "BUSINESS", "CULTURE", "SPORT"}


def test_textcat_add_label_after_initialize(nlp_factory):
    nlp = _nlp(nlp_factory)
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    textcat = nlp.get_pipe("textcat")
    before = nlp("Apple is a company .").cats
    textcat.add_label("SPORT")
    assert textcat.model.get_ref("label_attention").get_dim("nO") == 4
    after = nlp("Apple is a company .").cats
    assert set(after) == set(before) | {"SPORT"}
    assert sum(after.values()) == pytest.approx(1.0, abs=1e-5)


def test_textcat_width_unknown_error(tiny_bert):
    from spacy_spanbert.architectures import build_span_attention_textcat

    model = build_span_attention_textcat(exclusive_classes=True, nO=2)
    with pytest.raises(ValueError, match="SpanAttentionTextCat.*width of the span vectors"):
        model.initialize()


def test_textcat_overfitting_exclusive(exclusive_trained):
    nlp, losses = exclusive_trained
    assert losses[-1] < losses[0] * 0.1
    labels = nlp.get_pipe("textcat").labels
    for doc, (_, cats) in zip(nlp.pipe([t for t, _ in EXCLUSIVE_DATA]), EXCLUSIVE_DATA):
        predicted = max(doc.cats, key=doc.cats.get)
        assert predicted == max(cats, key=cats.get)
        assert set(doc.cats) == set(labels)
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_textcat_overfitting_multilabel(nlp_factory):
    nlp, losses = _train(_nlp(nlp_factory, exclusive=False), MULTI_DATA)
    assert losses[-1] < losses[0] * 0.1
    for doc, (_, cats) in zip(nlp.pipe([t for t, _ in MULTI_DATA]), MULTI_DATA):
        for label, value in cats.items():
            assert (doc.cats[label] >= 0.5) == bool(value), (doc.text, doc.cats)


@pytest.mark.parametrize("how", ["disk", "bytes", "pickle"])
def test_textcat_serializationround_trip(exclusive_trained, tmp_path, how):
    nlp, _ = exclusive_trained
    texts = [t for t, _ in EXCLUSIVE_DATA]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    nlp2 = round_trip(nlp, how, tmp_path)
    got = [doc.cats for doc in nlp2.pipe(texts)]
    for cats, cats2 in zip(expected, got):
        assert cats.keys() == cats2.keys()
        assert_allclose(list(cats.values()), list(cats2.values()), atol=1e-5)


@pytest.mark.parametrize("text", ["", "Berlin"])
def test_textcat_empty_and_tiny_docs(exclusive_trained, text):
    nlp, _ = exclusive_trained
    labels = set(nlp.get_pipe("textcat").labels)
    doc = nlp(text)
    assert set(doc.cats) == labels
    assert all(0.0 <= v <= 1.0 for v in doc.cats.values())
    if text:  # spaCy's own textcat gives an empty doc alone all zeros
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("factory", ["spanbert_textcat", "spanbert_textcat_multilabel"])
def test_textcat_empty_doc_does_not_depend_on_its_batch(nlp_factory, factory):
    """An empty doc's cats are the same alone, in a batch and in a batch of
    empty docs; exclusive classes sum to 1."""
    nlp = nlp_factory()
    nlp.add_pipe(factory)
    exclusive = factory == "spanbert_textcat"
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA if exclusive else MULTI_DATA))
    docs = list(nlp.pipe(["", "Berlin", "Apple is a company in New York ."]))
    alone = [nlp(""), nlp("Apple is a company in New York .")]
    for doc, single in zip([docs[0], docs[2]], alone):
        assert_allclose(list(doc.cats.values()), list(single.cats.values()), atol=1e-5)
    all_empty = list(nlp.pipe(["", " ", ""]))
    assert_allclose(list(all_empty[0].cats.values()), list(alone[0].cats.values()), atol=1e-5)
    if exclusive:
        assert sum(docs[0].cats.values()) == pytest.approx(1.0, abs=1e-5)
        assert sum(alone[0].cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_textcat_multilabel_empty_and_tiny_docs(nlp_factory):
    nlp = _nlp(nlp_factory, exclusive=False)
    nlp.initialize(lambda: _examples(nlp, MULTI_DATA))
    for text in ["", "Berlin"]:
        doc = nlp(text)
        assert set(doc.cats) == {"PERSON", "PLACE", "OPINION"}
        assert all(0.0 <= v <= 1.0 for v in doc.cats.values())


def test_textcat_update_with_empty_doc(nlp_factory):
    nlp = _nlp(nlp_factory)
    data = EXCLUSIVE_DATA + [("", {"POLITICS": 0.0, "BUSINESS": 1.0, "CULTURE": 0.0})]
    examples = _examples(nlp, data)
    nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=Adam(0.01))
    assert numpy.isfinite(losses["textcat"])


def test_textcat_attention_evidence(exclusive_trained):
    nlp, _ = exclusive_trained
    docs = list(nlp.pipe(["Apple is a company .", "", "Berlin"]))
    model = nlp.get_pipe("textcat").model
    _, indices, weights = predict_with_evidence(model, docs)
    lengths = indices.lengths
    assert list(lengths) == [len(doc.spans["spanbert"]) for doc in docs]
    assert weights.shape == (int(lengths.sum()), 3)
    assert_allclose(weights[: lengths[0]].sum(axis=0), numpy.ones(3), atol=1e-5)
    assert_allclose(weights[lengths[0] :].sum(axis=0), numpy.ones(3), atol=1e-5)


def _numeric_grad(array, f, eps=1e-2):
    """Central differences of the scalar function `f` at `array`."""
    grad = numpy.zeros(array.shape)
    for i in numpy.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _random_batch(rng, lengths, width):
    lengths = numpy.asarray(lengths, dtype="int32")
    n = int(lengths.sum())
    indices = Ragged(numpy.zeros((n, 2), dtype="int32"), lengths)
    vectors = rng.normal(size=(n, width)).astype("float32")
    doc_vectors = rng.normal(size=(len(lengths), width)).astype("float32")
    return SpanBatch(indices, vectors, doc_vectors)


def _gradient_case(make_layer, lengths, names, scale=1.0):
    """A layer of 3 labels over a random batch of width 4 with `lengths`
    spans per doc, its parameters `names` set at random (times `scale`), and
    a random gradient of its output. RETURNS: (layer, batch, d_out)."""
    rng = numpy.random.default_rng(0)
    batch = _random_batch(rng, lengths, 4)
    layer = make_layer(3, 4)
    layer.initialize()
    for name in names:
        shape = layer.get_param(name).shape
        layer.set_param(name, (rng.normal(size=shape) * scale).astype("float32"))
    d_out = rng.normal(size=(len(lengths), 3)).astype("float32")
    return layer, batch, d_out


def _assert_param_grads(layer, names, loss):
    """The gradient of each parameter in `names` (from the last backprop)
    matches a numeric gradient of `loss()`."""
    for name in names:
        param = layer.get_param(name).copy()

        def with_param(value, name=name):
            layer.set_param(name, value)
            return loss()

        expected = _numeric_grad(param, with_param)
        layer.set_param(name, param)
        assert_allclose(layer.get_grad(name), expected, atol=2e-3, err_msg=name)


@pytest.mark.parametrize("lengths", [[3, 0, 2, 1], [0, 0], [1]])
def test_textcat_label_attention_gradient(lengths):
    names = ("Q", "W", "U", "b")
    layer, batch, d_out = _gradient_case(label_attention, lengths, names)

    def loss(vectors, doc_vectors):
        out = layer.predict(SpanBatch(batch.indices, vectors, doc_vectors))
        return float((out.astype("float64") * d_out).sum())

    out, backprop = layer.begin_update(batch)
    d_batch = backprop(d_out)
    assert out.shape == (len(lengths), 3)
    assert_allclose(d_batch.vectors, _numeric_grad(batch.vectors, lambda v: loss(v, batch.doc_vectors)), atol=2e-3)
    assert_allclose(d_batch.doc_vectors, _numeric_grad(batch.doc_vectors, lambda d: loss(batch.vectors, d)), atol=2e-3)
    _assert_param_grads(layer, names, lambda: loss(batch.vectors, batch.doc_vectors))


def test_textcat_label_attention_passes_gradient_at_initialization():
    """A freshly initialized layer must send gradient to the span vectors, the
    doc vectors and the queries: with zero output weights the encoder below it
    got none and only the label priors were learned."""
    rng = numpy.random.default_rng(0)
    batch = _random_batch(rng, [5, 3], 8)
    layer = label_attention(4, 8)
    layer.initialize()
    _, backprop = layer.begin_update(batch)
    d_batch = backprop(rng.normal(size=(2, 4)).astype("float32"))
    assert numpy.abs(d_batch.vectors).max() > 1e-3
    assert numpy.abs(d_batch.doc_vectors).max() > 1e-3
    assert numpy.abs(layer.get_grad("Q")).max() > 1e-4


def test_textcat_label_attention_zero_spans_use_doc_vector():
    rng = numpy.random.default_rng(1)
    batch = _random_batch(rng, [0, 2], 4)
    layer = label_attention(2, 4)
    layer.initialize()
    layer.set_param("W", rng.normal(size=(2, 4)).astype("float32"))
    layer.set_param("U", rng.normal(size=(2, 4)).astype("float32"))
    out = layer.predict(batch)
    expected = batch.doc_vectors[0] @ layer.get_param("U").T + layer.get_param("b")
    assert_allclose(out[0], expected, atol=1e-5)


@pytest.mark.parametrize("lengths", [[3, 0, 2, 1], [0, 0], [1]])
def test_textcat_span_label_attention_v2_gradient(lengths):
    names = ("Q", "W", "b")
    layer, batch, d_out = _gradient_case(span_label_attention, lengths, names, scale=0.5)
    assert set(layer.param_names) == {"Q", "W", "b"}

    def loss(vectors):
        out = layer.predict(SpanBatch(batch.indices, vectors, batch.doc_vectors))
        return float((out.astype("float64") * d_out).sum())

    out, backprop = layer.begin_update(batch)
    d_batch = backprop(d_out)
    assert_allclose(d_batch.vectors, _numeric_grad(batch.vectors, loss), atol=2e-3)
    # the doc vector does not enter the v2 logits
    assert not d_batch.doc_vectors.any()
    _assert_param_grads(layer, names, lambda: loss(batch.vectors))


def test_textcat_span_label_attention_v2_starts_uniform_and_learns_queries():
    """v2 starts as mean pooling (zero queries) but its queries get a
    gradient from the first step; a doc without spans gets the bias."""
    rng = numpy.random.default_rng(0)
    batch = _random_batch(rng, [5, 0, 3], 8)
    layer = span_label_attention(4, 8)
    layer.initialize()
    _, weights = predict_with_weights(layer, batch)
    assert_allclose(weights[:5], numpy.full((5, 4), 0.2), atol=1e-6)
    out, backprop = layer.begin_update(batch)
    assert_allclose(out[1], layer.get_param("b"))
    backprop(rng.normal(size=(3, 4)).astype("float32"))
    assert numpy.abs(layer.get_grad("Q")).max() > 1e-4


def test_textcat_span_label_attention_v2_grows_labels():
    from spacy_spanbert.layers.label_attention import grow_labels

    layer = span_label_attention(2, 4, score_scale=3.0)
    layer.initialize()
    layer.set_param("Q", numpy.ones((2, 4), dtype="float32"))
    grown = grow_labels(layer, 3)
    assert grown.name == "span_label_attention"
    assert grown.attrs["score_scale"] == 3.0
    assert_allclose(grown.get_param("Q")[:2], 1.0)
    assert not grown.get_param("Q")[2].any()


def test_textcat_factories_and_configs_default_to_v2():
    """v2 (logits through the attended vectors only, score_scale 30) is the
    default: its full-budget runs kept v1's accuracy with evidence at least
    twice as comprehensive as random spans (benchmarks/README.md, Evidence)."""
    from pathlib import Path

    for factory, exclusive in (("spanbert_textcat", True), ("spanbert_textcat_multilabel", False)):
        model = spacy.Language.get_factory_meta(factory).default_config["model"]
        assert model["@architectures"] == "spacy-spanbert.SpanAttentionTextCat.v2"
        assert model["score_scale"] == 30.0 and model["exclusive_classes"] is exclusive
    configs = Path(__file__).resolve().parent.parent / "configs"
    for name in ("textcat.cfg", "ner_textcat.cfg", "textcat_multilabel.cfg"):
        text = (configs / name).read_text(encoding="utf8")
        assert "SpanAttentionTextCat.v2" in text and "SpanAttentionTextCat.v1" not in text, name


def test_textcat_span_attention_textcat_v2_rejects_bad_score_scale():
    from spacy_spanbert.architectures import build_span_attention_textcat_v2

    with pytest.raises(ValueError, match="SpanAttentionTextCat.v2.*score_scale"):
        build_span_attention_textcat_v2(True, score_scale=0.0)


def test_textcat_span_attention_textcat_v1_and_v2_layers():
    from spacy_spanbert.architectures import build_span_attention_textcat, build_span_attention_textcat_v2

    v1 = build_span_attention_textcat(True, nO=3)
    v2 = build_span_attention_textcat_v2(True, nO=3)
    assert v1.get_ref("label_attention").name == "label_attention"
    assert v2.get_ref("label_attention").name == "span_label_attention"


# -- spanbert_textcat / spanbert_textcat_multilabel: evidence ----------------

EVIDENCE_KEY = "spanbert_textcat_evidence"
EVIDENCE_TEXTS = [
    "Apple is a company in New York .",
    "Angela Merkel met Emmanuel Macron in Berlin .",
    "",
    "Berlin",
]


def _randomize(model, seed=0):
    """Random attention and output weights, so that the labels disagree and
    the attention is far from uniform."""
    rng = numpy.random.default_rng(seed)
    attention = model.get_ref("label_attention")
    scales = {"Q": 3.0, "W": 1.0, "U": 1.0, "b": 1.0}
    for name in attention.param_names:
        scale = scales[name]
        shape = attention.get_param(name).shape
        attention.set_param(name, (rng.normal(size=shape) * scale).astype("float32"))


def _only(nlp, name, texts):
    """Run the pipeline with `name` as the only text classifier."""
    prefixes = ("textcat", "spanbert_textcat")
    others = [n for n in nlp.pipe_names if n != name and n.startswith(prefixes)]
    with nlp.select_pipes(disable=others):
        return list(nlp.pipe(texts))


def _evidence(doc, key=EVIDENCE_KEY):
    group = doc.spans[key]
    return [(s.start, s.end, s.label_) for s in group], numpy.asarray(group.attrs["weights"])


@pytest.fixture(scope="module")
def evidence_nlp(tiny_bert):
    """spaCy's textcat and a spanbert_textcat with the same (random) weights."""
    from conftest import make_nlp

    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("textcat", config={"model": EXCLUSIVE_MODEL})
    nlp.add_pipe("spanbert_textcat", config={"model": EXCLUSIVE_MODEL})
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    _randomize(nlp.get_pipe("textcat").model)
    ours = nlp.get_pipe("spanbert_textcat")
    ours.model.from_bytes(nlp.get_pipe("textcat").model.to_bytes())
    return nlp


@pytest.fixture(scope="module")
def multi_evidence_nlp(tiny_bert):
    from conftest import make_nlp

    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_textcat_multilabel", config={"evidence_top_k": 2})
    nlp.initialize(lambda: _examples(nlp, MULTI_DATA))
    _randomize(nlp.get_pipe("spanbert_textcat_multilabel").model, seed=1)
    return nlp


def test_textcat_evidence_factory_defaults(evidence_nlp):
    ours = evidence_nlp.get_pipe("spanbert_textcat")
    assert isinstance(ours, spacy.pipeline.TextCategorizer)
    assert ours.evidence_key == EVIDENCE_KEY
    assert ours.evidence_top_k == 3
    assert ours.model.attrs["multi_label"] is False
    for factory, spacy_factory in [
        ("spanbert_textcat", "textcat"),
        ("spanbert_textcat_multilabel", "textcat_multilabel"),
    ]:
        meta = spacy.Language.get_factory_meta(factory)
        spacy_meta = spacy.Language.get_factory_meta(spacy_factory)
        assert meta.default_score_weights == spacy_meta.default_score_weights
        assert meta.default_config["scorer"] == spacy_meta.default_config["scorer"]
        assert meta.default_config["threshold"] == spacy_meta.default_config["threshold"]
        assert "doc.spans" in meta.assigns and "doc.cats" in meta.assigns


def test_textcat_evidence_top_k_per_label(evidence_nlp):
    doc = _only(evidence_nlp, "spanbert_textcat", [EVIDENCE_TEXTS[0]])[0]
    labels = ("POLITICS", "BUSINESS", "CULTURE")
    group = doc.spans[EVIDENCE_KEY]
    candidates = {(s.start, s.end) for s in doc.spans["spanbert"]}
    assert len(candidates) > 3
    assert [s.label_ for s in group] == [label for label in labels for _ in range(3)]
    assert all((s.start, s.end) in candidates for s in group)
    assert group.attrs["weights"].dtype == numpy.float32
    assert group.attrs["weights"].shape == (len(group),)
    assert list(group.attrs["labels"]) == list(labels)
    assert group.attrs["top_k"] == 3
    assert group.attrs["n_candidates"] == len(doc.spans["spanbert"])
    # The labels attend to different spans: the evidence is per label.
    assert len({(s.start, s.end) for s in group}) > 3


def test_textcat_evidence_matches_attention(evidence_nlp):
    docs = _only(evidence_nlp, "spanbert_textcat", EVIDENCE_TEXTS)
    ours = evidence_nlp.get_pipe("spanbert_textcat")
    _, indices, weights = predict_with_evidence(ours.model, docs)
    offsets = indices.dataXd.reshape((-1, 2))
    start = 0
    for doc, n in zip(docs, indices.lengths):
        n = int(n)
        rows = {tuple(map(int, offsets[start + i])): start + i for i in range(n)}
        spans, got = _evidence(doc)
        assert len(spans) == min(3, n) * len(ours.labels)
        for j, label in enumerate(ours.labels):
            block = [i for i, span in enumerate(spans) if span[2] == label]
            column = weights[start : start + n, j]
            expected = numpy.sort(column)[::-1][: len(block)]
            assert_allclose(got[block], expected, rtol=1e-5, atol=1e-7)
            assert all(numpy.diff(got[block]) <= 0)
            for i in block:
                s, e, _ = spans[i]
                assert_allclose(got[i], weights[rows[(s, e)], j], rtol=1e-5, atol=1e-7)
        start += n


def test_textcat_evidence_cats_match_spacy_textcat(evidence_nlp):
    spacy_docs = _only(evidence_nlp, "textcat", EVIDENCE_TEXTS)
    our_docs = _only(evidence_nlp, "spanbert_textcat", EVIDENCE_TEXTS)
    model = evidence_nlp.get_pipe("spanbert_textcat").model
    predicted = model.predict(our_docs)
    for i, (theirs, ours) in enumerate(zip(spacy_docs, our_docs)):
        assert list(ours.cats) == list(theirs.cats)
        assert_allclose(list(ours.cats.values()), list(theirs.cats.values()), atol=1e-6)
        assert_allclose(list(ours.cats.values()), predicted[i], atol=1e-6)
    # The random weights make the labels disagree: the comparison means something.
    assert numpy.ptp(list(our_docs[0].cats.values())) > 0.05


def test_textcat_evidence_single_forward_pass(evidence_nlp, monkeypatch):
    ours = evidence_nlp.get_pipe("spanbert_textcat")
    listener = ours.model.get_ref("tok2vec")
    calls = []
    forward = listener._func

    def counting(model, X, is_train):
        calls.append(len(X))
        return forward(model, X, is_train)

    monkeypatch.setattr(listener, "_func", counting)
    docs = _only(evidence_nlp, "spanbert_textcat", EVIDENCE_TEXTS)
    assert calls == [len(EVIDENCE_TEXTS)]
    assert len(docs[0].spans[EVIDENCE_KEY]) == 9


def test_textcat_evidence_multilabel(multi_evidence_nlp):
    name = "spanbert_textcat_multilabel"
    textcat = multi_evidence_nlp.get_pipe(name)
    assert isinstance(textcat, spacy.pipeline.textcat_multilabel.MultiLabel_TextCategorizer)
    assert textcat.model.attrs["multi_label"] is True
    docs = list(multi_evidence_nlp.pipe(EVIDENCE_TEXTS[:2]))
    predicted = textcat.model.predict(docs)
    _, indices, weights = predict_with_evidence(textcat.model, docs)
    for i, doc in enumerate(docs):
        assert_allclose(list(doc.cats.values()), predicted[i], atol=1e-6)
        group = doc.spans[f"{name}_evidence"]
        assert [s.label_ for s in group] == [label for label in textcat.labels for _ in range(2)]
        n = int(indices.lengths[i])
        first = int(indices.lengths[:i].sum())
        best = weights[first : first + n].max(axis=0)
        assert_allclose(group.attrs["weights"][::2], best, rtol=1e-5)
    assert abs(sum(docs[0].cats.values()) - 1.0) > 1e-3  # sigmoids, not a softmax


def test_textcat_evidence_zero_spans(evidence_nlp):
    ours = evidence_nlp.get_pipe("spanbert_textcat")
    alone = _only(evidence_nlp, "spanbert_textcat", [""])[0]
    in_batch = _only(evidence_nlp, "spanbert_textcat", ["", "Berlin"])
    # A non-empty doc whose suggester found nothing.
    doc = evidence_nlp.make_doc("Berlin is a city .")
    for name in ("transformer", "spanbert"):
        doc = evidence_nlp.get_pipe(name)(doc)
    found = doc.spans["spanbert"]
    doc.spans["spanbert"] = SpanGroup(
        doc,
        name="spanbert",
        spans=[],
        attrs={"vectors": found.attrs["vectors"][:0], "doc_vector": found.attrs["doc_vector"]},
    )
    doc = ours(doc)
    for empty in (alone, in_batch[0], doc):
        group = empty.spans[EVIDENCE_KEY]
        assert len(group) == 0
        assert group.attrs["weights"].shape == (0,)
        assert group.attrs["n_candidates"] == 0
        assert set(empty.cats) == set(ours.labels)
    assert len(in_batch[1].spans[EVIDENCE_KEY]) == len(ours.labels)  # one candidate, k = 3
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_textcat_evidence_displacy(evidence_nlp):
    from spacy import displacy

    doc, empty = _only(evidence_nlp, "spanbert_textcat", [EVIDENCE_TEXTS[0], ""])
    html = displacy.render(doc, style="span", options={"spans_key": EVIDENCE_KEY})
    for label in evidence_nlp.get_pipe("spanbert_textcat").labels:
        assert label in html
    with pytest.warns(UserWarning, match="W117"):
        displacy.render(empty, style="span", options={"spans_key": EVIDENCE_KEY})


def test_textcat_evidence_key_none(nlp_factory):
    nlp = nlp_factory()
    textcat = nlp.add_pipe("spanbert_textcat", name="topic", config={"evidence_key": None})
    nlp.initialize(lambda: _examples(nlp, EXCLUSIVE_DATA))
    assert textcat.evidence_key is None
    doc = nlp(EVIDENCE_TEXTS[0])
    assert list(doc.spans) == ["spanbert"]
    assert set(doc.cats) == set(textcat.labels)
    textcat.cfg["evidence_key"] = "spanbert"
    with pytest.raises(ValueError, match="topic: evidence_key 'spanbert' is the span group"):
        nlp(EVIDENCE_TEXTS[0])


def test_textcat_evidence_key_uses_component_name(nlp_factory):
    nlp = nlp_factory()
    topic = nlp.add_pipe("spanbert_textcat", name="topic")
    custom = nlp.add_pipe("spanbert_textcat_multilabel", config={"evidence_key": "why_{name}"})
    assert topic.evidence_key == "topic_evidence"
    assert custom.evidence_key == "why_spanbert_textcat_multilabel"


@pytest.mark.parametrize(
    "config,match",
    [
        ({"evidence_top_k": 0}, "spanbert_textcat: evidence_top_k must be a positive integer"),
        ({"evidence_key": ""}, "spanbert_textcat: evidence_key must be a non-empty string"),
        (
            {
                "model": {
                    "@architectures": "spacy.TextCatBOW.v3",
                    "exclusive_classes": True,
                    "ngram_size": 1,
                    "no_output_layer": False,
                }
            },
            "spanbert_textcat: the model must be a span-attention text classifier",
        ),
    ],
)
def test_textcat_evidence_config_errors(config, match):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("spanbert_textcat", config=config)


@pytest.mark.parametrize("how", ["disk", "bytes", "pickle"])
def test_textcat_evidence_serializationround_trip(evidence_nlp, tmp_path, how):
    nlp = evidence_nlp
    nlp2 = round_trip(nlp, how, tmp_path)
    assert nlp2.get_pipe("spanbert_textcat").evidence_key == EVIDENCE_KEY
    texts = EVIDENCE_TEXTS[:2]
    docs2 = _only(nlp2, "spanbert_textcat", texts)
    for doc, doc2 in zip(_only(nlp, "spanbert_textcat", texts), docs2):
        assert doc.cats.keys() == doc2.cats.keys()
        assert_allclose(list(doc.cats.values()), list(doc2.cats.values()), atol=1e-6)
        spans, weights = _evidence(doc)
        spans2, weights2 = _evidence(doc2)
        assert spans == spans2
        assert_allclose(weights, weights2, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*W109")
def test_textcat_evidence_docround_trip(evidence_nlp):
    from spacy.tokens import Doc, DocBin

    doc = _only(evidence_nlp, "spanbert_textcat", [EVIDENCE_TEXTS[0]])[0]
    spans, weights = _evidence(doc)
    copies = [
        Doc(evidence_nlp.vocab).from_bytes(doc.to_bytes()),
        next(DocBin(docs=[doc], store_user_data=True).get_docs(evidence_nlp.vocab)),
        pickle.loads(pickle.dumps(doc)),
    ]
    for copy in copies:
        spans2, weights2 = _evidence(copy)
        assert spans2 == spans
        assert_allclose(weights2, weights)
        assert copy.spans[EVIDENCE_KEY].attrs["labels"] == doc.spans[EVIDENCE_KEY].attrs["labels"]


def test_textcat_evidence_scores_are_spacys(evidence_nlp):
    examples = [
        Example(doc, example.reference)
        for doc, example in zip(
            _only(evidence_nlp, "spanbert_textcat", [t for t, _ in EXCLUSIVE_DATA]),
            _examples(evidence_nlp, EXCLUSIVE_DATA),
        )
    ]
    scores = evidence_nlp.get_pipe("spanbert_textcat").score(examples)
    assert {"cats_score", "cats_macro_f", "cats_macro_auc"} <= set(scores)


@pytest.mark.parametrize("exclusive", [True, False])
def test_textcat_activation_backprop_is_cross_entropy(exclusive):
    """spaCy's text classifiers hand `scores - truths` to the model. Through
    the output activation that must be the gradient of cross-entropy with
    respect to the logits (as in thinc's Softmax layer, spaCy's own exclusive
    output), not the gradient of the squared error of the probabilities, which
    vanishes on a confident mistake."""
    from spacy_spanbert.layers.activation import cross_entropy_activation

    rng = numpy.random.default_rng(0)
    logits = (3 * rng.normal(size=(4, 5))).astype("float32")
    if exclusive:
        truths = numpy.eye(5, dtype="float32")[[0, 3, 3, 1]]
    else:
        truths = (rng.random(size=(4, 5)) < 0.3).astype("float32")
    layer = cross_entropy_activation(exclusive)
    scores, backprop = layer.begin_update(logits)
    x = logits.astype("float64")
    if exclusive:
        expected = numpy.exp(x - x.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
    else:
        expected = 1.0 / (1.0 + numpy.exp(-x))
    assert_allclose(scores, expected, rtol=1e-5)

    def cross_entropy(z):
        if exclusive:
            z = z - z.max(axis=1, keepdims=True)
            return float(-(truths * (z - numpy.log(numpy.exp(z).sum(axis=1, keepdims=True)))).sum())
        return float((numpy.logaddexp(0, z) - truths * z).sum())

    numeric = numpy.zeros(x.shape)
    for i in numpy.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += 1e-4
        minus[i] -= 1e-4
        numeric[i] = (cross_entropy(plus) - cross_entropy(minus)) / 2e-4
    assert_allclose(backprop(scores - truths), numeric, atol=1e-4)


@pytest.mark.parametrize("exclusive", [True, False])
def test_textcat_model_trains_label_attention_with_cross_entropy(exclusive):
    """In the registered architecture, `scores - truths` reaches the label
    biases unchanged: the bias gradient is its column sum."""
    from spacy_spanbert.architectures import build_span_attention_textcat

    rng = numpy.random.default_rng(1)
    model = build_span_attention_textcat(exclusive, nO=3)
    attention = model.get_ref("label_attention")
    attention.set_dim("nI", 6)
    attention.initialize()
    batch = _random_batch(rng, [4, 2, 3], 6)
    logits, bp_attention = attention.begin_update(batch)
    scores, bp_activation = model.get_ref("activation").begin_update(logits)
    truths = numpy.eye(3, dtype="float32")[[2, 0, 1]]
    bp_attention(bp_activation(scores - truths))
    assert_allclose(attention.get_grad("b"), (scores - truths).sum(axis=0), atol=1e-6)
