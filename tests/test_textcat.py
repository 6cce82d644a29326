import pickle

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.training import Example
from thinc.api import Adam, fix_random_seed
from thinc.types import Ragged

from spacy_spanbert.data_classes import SpanBatch
from spacy_spanbert.layers.label_attention import label_attention
from spacy_spanbert.textcat import span_attention_evidence

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
    from spacy_spanbert.textcat import build_span_attention_textcat

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
def test_textcat_serialization_round_trip(exclusive_trained, tmp_path, how):
    nlp, _ = exclusive_trained
    texts = [t for t, _ in EXCLUSIVE_DATA]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    if how == "disk":
        nlp.to_disk(tmp_path / "model")
        nlp2 = spacy.load(tmp_path / "model")
    elif how == "bytes":
        nlp2 = spacy.util.load_model_from_config(nlp.config).from_bytes(nlp.to_bytes())
    else:
        nlp2 = pickle.loads(pickle.dumps(nlp))
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
    if text:
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_textcat_empty_doc_in_batch(exclusive_trained):
    nlp, _ = exclusive_trained
    docs = list(nlp.pipe(["", "Berlin", "Apple is a company in New York ."]))
    alone = nlp("Apple is a company in New York .")
    assert_allclose(list(docs[2].cats.values()), list(alone.cats.values()), atol=1e-5)
    assert sum(docs[1].cats.values()) == pytest.approx(1.0, abs=1e-5)


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
    indices, weights = span_attention_evidence(model, docs)
    lengths = indices.lengths
    assert list(lengths) == [len(doc.spans["spanbert"]) for doc in docs]
    assert weights.shape == (int(lengths.sum()), 3)
    assert_allclose(weights[: lengths[0]].sum(axis=0), numpy.ones(3), atol=1e-5)
    assert_allclose(weights[lengths[0] :].sum(axis=0), numpy.ones(3), atol=1e-5)


def _random_batch(rng, lengths, width):
    lengths = numpy.asarray(lengths, dtype="int32")
    n = int(lengths.sum())
    indices = Ragged(numpy.zeros((n, 2), dtype="int32"), lengths)
    vectors = rng.normal(size=(n, width)).astype("float32")
    doc_vectors = rng.normal(size=(len(lengths), width)).astype("float32")
    return SpanBatch(indices, vectors, doc_vectors)


@pytest.mark.parametrize("lengths", [[3, 0, 2, 1], [0, 0], [1]])
def test_textcat_label_attention_gradient(lengths):
    rng = numpy.random.default_rng(0)
    width, n_labels = 4, 3
    batch = _random_batch(rng, lengths, width)
    layer = label_attention(n_labels, width)
    layer.initialize()
    for name in ("Q", "W", "U", "b"):
        shape = layer.get_param(name).shape
        layer.set_param(name, rng.normal(size=shape).astype("float32"))
    d_out = rng.normal(size=(len(lengths), n_labels)).astype("float32")

    def loss(vectors, doc_vectors):
        out = layer.predict(SpanBatch(batch.indices, vectors, doc_vectors))
        return float((out.astype("float64") * d_out).sum())

    def numeric(array, f, eps=1e-2):
        grad = numpy.zeros(array.shape)
        for i in numpy.ndindex(array.shape):
            plus, minus = array.copy(), array.copy()
            plus[i] += eps
            minus[i] -= eps
            grad[i] = (f(plus) - f(minus)) / (2 * eps)
        return grad

    out, backprop = layer.begin_update(batch)
    d_batch = backprop(d_out)
    assert out.shape == (len(lengths), n_labels)
    assert_allclose(
        d_batch.vectors, numeric(batch.vectors, lambda v: loss(v, batch.doc_vectors)), atol=2e-3
    )
    assert_allclose(
        d_batch.doc_vectors, numeric(batch.doc_vectors, lambda d: loss(batch.vectors, d)), atol=2e-3
    )
    for name in ("Q", "W", "U", "b"):
        param = layer.get_param(name).copy()

        def with_param(value, name=name):
            layer.set_param(name, value)
            return loss(batch.vectors, batch.doc_vectors)

        expected = numeric(param, with_param)
        layer.set_param(name, param)
        assert_allclose(layer.get_grad(name), expected, atol=2e-3, err_msg=name)


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
