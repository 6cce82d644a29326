"""spacy_spanbert/evidence.py: the occlusion estimator, fitted on real
leave-one-out drops and used as the text classifiers' evidence."""

import numpy
import pytest
import spacy
from conftest import make_nlp, round_trip
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_spanbert import fit_occlusion_estimator
from spacy_spanbert.evidence import _ridge

SUGGESTER = {"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 1, "max_size": 2}}}
# The label is decided by one keyword ("great" / "awful") among fillers.
FILLERS = ["the", "movie", "was", "really", "quite", "today", "and", "it"]
KEYWORDS = {"great": {"POS": 1.0, "NEG": 0.0}, "awful": {"POS": 0.0, "NEG": 1.0}}


def _toy_texts(n, seed):
    rng = numpy.random.default_rng(seed)
    rows = []
    for i in range(n):
        keyword = "great" if i % 2 == 0 else "awful"
        words = list(rng.choice(FILLERS, size=5))
        words.insert(int(rng.integers(0, 6)), keyword)
        rows.append((" ".join(words), KEYWORDS[keyword]))
    return rows


@pytest.fixture(scope="module")
def toy_nlp(tiny_bert):
    nlp = make_nlp(tiny_bert, SUGGESTER)
    nlp.add_pipe("spanbert_textcat", config={"evidence_top_k": 1})
    fix_random_seed(0)
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in _toy_texts(80, 0)]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.003)
    for _ in range(15):  # not to saturation: removing a token must still move p
        nlp.update(examples, sgd=optimizer)
    assert nlp.get_pipe("spanbert_textcat").evidence_method == "attention"  # auto, nothing fitted
    fit = fit_occlusion_estimator(nlp, [eg.reference for eg in examples], max_docs=80)
    return nlp, fit


def test_evidence_ridge_recovers_a_linear_map():
    rng = numpy.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    w = numpy.array([1.0, -2.0, 0.5, 0.0, 3.0])
    w_hat, b_hat = _ridge(X, X @ w + 0.7, alpha=1e-6)
    numpy.testing.assert_allclose(w_hat, w, atol=1e-4)
    assert b_hat == pytest.approx(0.7, abs=1e-4)


def test_evidence_fit_stores_a_json_safe_estimator(toy_nlp):
    nlp, fit = toy_nlp
    pipe = nlp.get_pipe("spanbert_textcat")
    estimator = pipe.cfg["occlusion_estimator"]
    assert fit["n_docs"] == 80 and fit["n_tokens"] == 480 and fit["correlation"] > 0.5
    assert fit["labels_fitted_alone"] == ["POS", "NEG"] or sorted(fit["labels_fitted_alone"]) == ["NEG", "POS"]
    assert estimator["labels"] == list(pipe.labels)
    assert numpy.asarray(estimator["W"]).shape == (2, 32) and isinstance(estimator["W"][0][0], float)
    assert pipe.evidence_method == "occlusion_estimate"


def test_evidence_removing_the_estimated_evidence_changes_the_decision(toy_nlp):
    """On held-out toy sentences, removing the estimated evidence token moves
    the decision far more than removing any other token, and it is the token
    whose removal moves it most in at least half of them (the classifier
    learned the keyword for NEG; for POS it leans on other words too)."""
    nlp, _ = toy_nlp
    evidence_drops, other_drops, best = [], [], 0
    for text, _ in _toy_texts(10, 1):
        doc = nlp(text)
        label = max(doc.cats, key=doc.cats.get)
        group = doc.spans["spanbert_textcat_evidence"]
        (evidence,) = [span for span in group if span.label_ == label]
        assert group.attrs["method"] == "occlusion_estimate" and len(evidence) == 1
        drops = [doc.cats[label] - nlp(" ".join(t.text for t in doc if t.i != i)).cats[label] for i in range(len(doc))]
        evidence_drops.append(drops[evidence.start])
        other_drops.append(numpy.mean([d for i, d in enumerate(drops) if i != evidence.start]))
        best += drops[evidence.start] == max(drops)
    assert numpy.mean(evidence_drops) > 0.15
    assert numpy.mean(evidence_drops) > numpy.mean(other_drops) + 0.1
    assert best >= 5


@pytest.mark.parametrize("how", ["disk", "bytes", "pickle"])
def test_evidence_estimator_survives_serialization(toy_nlp, how, tmp_path):
    nlp, _ = toy_nlp
    text = "the movie was great today"
    doc, loaded_doc = nlp(text), round_trip(nlp, how, tmp_path)(text)
    expected, got = doc.spans["spanbert_textcat_evidence"], loaded_doc.spans["spanbert_textcat_evidence"]
    assert [(s.start, s.end, s.label_) for s in got] == [(s.start, s.end, s.label_) for s in expected]
    numpy.testing.assert_allclose(got.attrs["weights"], expected.attrs["weights"], rtol=1e-5)


def test_evidence_attention_method_ignores_the_estimator(toy_nlp):
    nlp, _ = toy_nlp
    pipe = nlp.get_pipe("spanbert_textcat")
    pipe.cfg["evidence_method"] = "attention"
    try:
        group = nlp("the movie was great").spans["spanbert_textcat_evidence"]
        assert group.attrs["method"] == "attention"
    finally:
        pipe.cfg["evidence_method"] = "auto"


def test_evidence_occlusion_estimate_without_a_fit_is_an_error(tiny_bert):
    nlp = make_nlp(tiny_bert, SUGGESTER)
    nlp.add_pipe("spanbert_textcat", config={"evidence_method": "occlusion_estimate"})
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in _toy_texts(4, 0)]
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match=r"E084\] spanbert_textcat: evidence_method is 'occlusion_estimate' but no"):
        nlp("the movie was great")


def test_evidence_bad_method_and_missing_classifier(tiny_bert):
    nlp = make_nlp(tiny_bert, SUGGESTER)
    with pytest.raises(ValueError, match=r"E083\] spanbert_textcat: evidence_method must be one of"):
        nlp.add_pipe("spanbert_textcat", config={"evidence_method": "gradient"})
    with pytest.raises(ValueError, match=r"E080\] Evidence: the pipeline has no text classifier"):
        fit_occlusion_estimator(nlp, [])


def test_evidence_fit_evidence_command(tiny_bert, tmp_path):
    from spacy.cli._util import app
    from spacy.tokens import DocBin
    from typer.testing import CliRunner

    import spacy_spanbert.commands.evidence.cli  # noqa: F401  (registers the command)

    nlp = make_nlp(tiny_bert, SUGGESTER)
    nlp.add_pipe("spanbert_textcat")
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in _toy_texts(6, 0)]
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(tmp_path / "data.spacy")
    args = ["spanbert", "fit-evidence", str(tmp_path / "model"), str(tmp_path / "data.spacy"), str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    fitted = spacy.load(tmp_path / "out")
    assert fitted.get_pipe("spanbert_textcat").evidence_method == "occlusion_estimate"
    assert fitted.meta["spacy_spanbert"]["occlusion_estimator"]["n_docs"] == 6
    missing = CliRunner().invoke(app, args[:3] + [str(tmp_path / "nope.spacy"), str(tmp_path / "out2")])
    assert missing.exit_code == 1 and "E085" in missing.output


def test_evidence_estimator_changes_no_prediction(toy_nlp):
    """The estimator only chooses which spans are stored: doc.cats are the
    classifier's, with or without it."""
    nlp, _ = toy_nlp
    pipe = nlp.get_pipe("spanbert_textcat")
    texts = [text for text, _ in _toy_texts(6, 2)]
    with_estimate = [doc.cats for doc in nlp.pipe(texts)]
    pipe.cfg["evidence_method"] = "attention"
    try:
        with_attention = [doc.cats for doc in nlp.pipe(texts)]
    finally:
        pipe.cfg["evidence_method"] = "auto"
    assert with_estimate == with_attention
