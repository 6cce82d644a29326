from functools import partial

import numpy
import pytest
import spacy
from conftest import make_nlp, round_trip, train_losses
from numpy.testing import assert_allclose
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import Adam

from spacy_spanbert.coref import SpanBertCoref
from spacy_spanbert.coref.clusters import follow_antecedents

# (text, clusters as lists of (start, end))
DATA = [
    (
        "angela merkel met emmanuel macron in berlin . she said he was good .",
        [[(0, 2), (8, 9)], [(3, 5), (10, 11)], [(6, 7)]],
    ),
    (
        "the german chancellor visited paris . she told the president it was good .",
        [[(0, 3), (6, 7)], [(4, 5), (10, 11)], [(8, 10)]],
    ),
]
NGRAMS_4 = {"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 1, "max_size": 4}}}


def _examples(nlp, data=DATA):
    examples = []
    for text, clusters in data:
        ref = nlp.make_doc(text)
        for i, cluster in enumerate(clusters, 1):
            ref.spans[f"coref_clusters_{i}"] = [Span(ref, s, e) for s, e in cluster]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _make(nlp_factory, spanbert_config=NGRAMS_4, **config):
    nlp = nlp_factory(spanbert_config)
    nlp.add_pipe("spanbert_coref", config=config)
    return nlp


def _clusters(doc, prefix="coref_clusters"):
    keys = sorted((k for k in doc.spans if k.startswith(prefix + "_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return [[(s.start, s.end) for s in doc.spans[k]] for k in keys]


_train = partial(train_losses, name="spanbert_coref", n_iter=60, lr=0.002)


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = make_nlp(tiny_bert, NGRAMS_4)
    nlp.add_pipe("spanbert_coref", config={"model": {"dropout": 0.0}, "learn_rate_scale": 3.0})
    history = _train(nlp, _examples(nlp))
    return nlp, history


def test_coref_add_pipe(nlp_factory):
    nlp = _make(nlp_factory)
    coref = nlp.get_pipe("spanbert_coref")
    assert isinstance(coref, SpanBertCoref)
    assert nlp.get_pipe_meta("spanbert_coref").assigns == ["doc.spans"]
    assert coref.cfg["span_cluster_prefix"] == "coref_clusters"
    assert nlp.get_pipe_meta("spanbert_coref").default_score_weights["coref_f"] == 1.0


def test_coref_error_before_initialize(nlp_factory):
    nlp = _make(nlp_factory)
    with pytest.raises(ValueError, match="spanbert_coref.*initialize"):
        nlp.get_pipe("spanbert_coref").predict([nlp.make_doc("she said .")])


def test_coref_no_gold_clusters(nlp_factory):
    nlp = _make(nlp_factory)
    examples = [Example(nlp.make_doc("she said ."), nlp.make_doc("she said ."))]
    with pytest.raises(ValueError, match="spanbert_coref: no gold coreference clusters.*'coref_clusters_1'"):
        nlp.initialize(lambda: examples)


@pytest.mark.parametrize(
    "config,match",
    [
        ({"span_cluster_prefix": ""}, "span_cluster_prefix must be a non-empty string"),
        ({"mentions_key": ""}, "mentions_key must be a non-empty string"),
        ({"mention_loss_weight": -1.0}, "mention_loss_weight must be a non-negative number"),
        ({"model": {"mention_ratio": 0.0}}, "mention_ratio must be a number in \\(0, 1\\]"),
        ({"model": {"mention_ratio": 1.5}}, "mention_ratio must be a number in \\(0, 1\\]"),
        ({"model": {"max_antecedents": 0}}, "max_antecedents must be a positive integer"),
        ({"model": {"antecedent_window": 0}}, "antecedent_window must be a positive integer"),
        ({"model": {"dropout": 1.0}}, "dropout must be in \\[0, 1\\)"),
        ({"learn_rate_scale": 0}, "learn_rate_scale"),
    ],
)
def test_coref_bad_config(nlp_factory, config, match):
    nlp = nlp_factory(NGRAMS_4)
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("spanbert_coref", config=config)


def test_coref_keep_singletons_must_be_bool(nlp_factory):
    from spacy_spanbert.architectures import build_coref_scorer

    with pytest.raises(ValueError, match="keep_singletons must be true or false"):
        SpanBertCoref(spacy.blank("en").vocab, build_coref_scorer(), keep_singletons="yes")


def test_coref_overfitting(trained):
    nlp, history = trained
    assert history[-1] < history[0] * 0.2
    for text, clusters in DATA:
        doc = nlp(text)
        assert _clusters(doc) == clusters
        mentions = doc.spans["spanbert_mentions"]
        assert mentions.attrs["scores"].dtype == numpy.float32
        assert len(mentions.attrs["scores"]) == len(mentions)


def test_coref_scores_after_training(trained):
    nlp, _ = trained
    scores = nlp.evaluate(_examples(nlp))
    assert scores["coref_f"] == pytest.approx(1.0)
    assert scores["coref_mention_f"] == pytest.approx(1.0)


def test_coref_serialization_round_trips(trained, tmp_path):
    nlp, _ = trained
    texts = [text for text, _ in DATA]
    expected = [(_clusters(d), d.spans["spanbert_mentions"].attrs["scores"]) for d in nlp.pipe(texts)]

    def check(other):
        for doc, (clusters, scores) in zip(other.pipe(texts), expected):
            assert _clusters(doc) == clusters
            assert_allclose(doc.spans["spanbert_mentions"].attrs["scores"], scores, atol=1e-5)

    for how in ("disk", "bytes", "pickle"):
        (tmp_path / how).mkdir()
        check(round_trip(nlp, how, tmp_path / how))


def test_coref_batch_size_invariance(trained):
    nlp, _ = trained
    texts = [text for text, _ in DATA] * 2 + ["", "hello"]
    one = [_clusters(d) for d in nlp.pipe(texts, batch_size=1)]
    many = [_clusters(d) for d in nlp.pipe(texts, batch_size=8)]
    assert one == many


@pytest.mark.parametrize("text", ["", "she", ". , ! ?", "she said"])
def test_coref_small_docs(trained, text):
    nlp, _ = trained
    doc = nlp(text)
    mentions = doc.spans["spanbert_mentions"]
    assert len(mentions.attrs["scores"]) == len(mentions)
    assert len(mentions) <= max(1, int(0.4 * len(doc)))
    losses = nlp.update([Example(nlp.make_doc(text), nlp.make_doc(text))], sgd=Adam(0.0))
    assert numpy.isfinite(losses["spanbert_coref"])


def test_coref_no_candidates(nlp_factory):
    suggester = {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 3, "max_size": 3}
    nlp = _make(nlp_factory, {"model": {"suggester": suggester}})
    with pytest.warns(UserWarning, match="gold mentions"):
        optimizer = nlp.initialize(lambda: _examples(nlp))
    docs = list(nlp.pipe(["hi there", "hi", "one two three four"]))
    assert [len(d.spans["spanbert_mentions"]) for d in docs] == [0, 0, 1]
    assert _clusters(docs[0]) == [] and _clusters(docs[1]) == []
    small = [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in ["hi there", "hi"]]
    assert nlp.update(small, sgd=optimizer)["spanbert_coref"] == 0.0


def test_coref_long_doc(trained):
    nlp, _ = trained
    text = " ".join([DATA[0][0]] * 200)  # 2,800 tokens
    doc = nlp(text)
    assert len(doc) == 2800
    mentions = doc.spans["spanbert_mentions"]
    assert len(mentions) == int(0.4 * len(doc))
    kept = {(s.start, s.end) for s in mentions}
    clusters = _clusters(doc)
    assert clusters and all(set(cluster) <= kept for cluster in clusters)


def test_coref_antecedents_are_bounded(trained):
    nlp, _ = trained
    coref = nlp.get_pipe("spanbert_coref")
    doc = nlp.get_pipe("spanbert")(nlp.get_pipe("transformer")(nlp.make_doc(" ".join([DATA[1][0]] * 30))))
    scores = coref.predict([doc])
    kept = int(scores.kept_lengths[0])
    assert scores.scores.shape == (kept, 1 + 50)
    rows = numpy.arange(kept)[:, None]
    ants = scores.antecedents
    assert ((ants < rows) | (ants == -1)).all()
    assert ((ants >= rows - 400) | (ants == -1)).all()
    assert "spanbert_mentions" not in doc.spans  # predict is pure


def test_coref_follow_antecedents():
    antecedents = numpy.asarray([[-1, -1], [0, -1], [1, 0], [-1, -1]])
    scores = numpy.asarray([[0.0, -1e4, -1e4], [0.0, 2.0, -1e4], [0.0, 1.0, 3.0], [0.0, -1e4, -1e4]])
    mention_scores = numpy.asarray([1.0, 1.0, 1.0, 0.5])
    assert follow_antecedents(antecedents, scores, mention_scores, keep_singletons=True) == [[0, 1, 2], [3]]
    mention_scores[3] = -0.5
    assert follow_antecedents(antecedents, scores, mention_scores, keep_singletons=True) == [[0, 1, 2]]
    assert follow_antecedents(antecedents, scores, mention_scores * 0 + 1, keep_singletons=False) == [[0, 1, 2]]


def test_coref_loss_gradient(nlp_factory):
    """The antecedent gradient is softmax minus the gold-restricted softmax:
    each row sums to zero, and the loss is the negative log of the gold mass."""
    nlp = _make(nlp_factory)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    coref = nlp.get_pipe("spanbert_coref")
    docs = [eg.predicted for eg in examples]
    for name in ("transformer", "spanbert"):
        docs = list(nlp.get_pipe(name).pipe(docs))
    predictions = coref.predict(docs)
    coref.cfg["mention_loss_weight"] = 0.0
    loss, (d_mention, d_scores) = coref.get_loss(examples, predictions)
    coref.cfg["mention_loss_weight"] = 1.0
    assert_allclose(d_scores.sum(1), 0.0, atol=1e-5)
    assert not d_mention.any()
    assert loss > 0.0


def test_coref_replaces_old_clusters(trained):
    nlp, _ = trained
    doc = nlp.make_doc(DATA[0][0])
    doc.spans["coref_clusters_99"] = [Span(doc, 0, 1)]
    doc = nlp(doc)
    assert "coref_clusters_99" not in doc.spans
