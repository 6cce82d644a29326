"""benchmarks/evidence.py: the ERASER metrics on hand-built cases (a fake
classifier whose probability depends on which tokens are present) and the
command line on a tiny trained pipeline."""

import importlib.util
import json
from pathlib import Path

import numpy
import pytest
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load_evidence():
    spec = importlib.util.spec_from_file_location("evidence_benchmark", BENCHMARKS / "evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ev = _load_evidence()

# "the film was good ." : the fake classifier is sure of the label when
# token 3 ("good") is present, and adds a little for token 1 ("film").
N_TOKENS = 5
UNIGRAMS = [(i, i + 1) for i in range(N_TOKENS)]
BIGRAMS = [(i, i + 2) for i in range(N_TOKENS - 1)]


def fake_score(masks):
    return [0.1 + 0.7 * bool(m[3]) + 0.1 * bool(m[1]) for m in masks]


def test_evidence_comprehensiveness_and_sufficiency_are_differences():
    assert ev.comprehensiveness(0.9, 0.2) == pytest.approx(0.7)
    assert ev.sufficiency(0.9, 0.8) == pytest.approx(0.1)
    assert ev.comprehensiveness(0.3, 0.5) == pytest.approx(-0.2)


def test_evidence_sharpness_is_top_weight_over_uniform():
    assert ev.sharpness(0.25, 4) == pytest.approx(1.0)
    assert ev.sharpness(0.6, 10) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="no candidate spans"):
        ev.sharpness(1.0, 0)


def test_evidence_token_mask_unions_spans():
    mask = ev.token_mask(6, [(1, 3), (2, 4), (5, 6)])
    assert mask.tolist() == [False, True, True, True, False, True]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 5])
def test_evidence_random_spans_cover_exactly_the_length(length):
    rng = numpy.random.default_rng(0)
    candidates = UNIGRAMS + BIGRAMS
    draws = [ev.random_spans(candidates, N_TOKENS, length, rng) for _ in range(20)]
    for spans in draws:
        assert int(ev.token_mask(N_TOKENS, spans).sum()) == length
        assert all(span in candidates for span in spans)
    if 0 < length < N_TOKENS:
        # the draws differ
        assert len({tuple(sorted(s)) for s in draws}) > 1


def test_evidence_random_spans_stop_when_no_candidate_fits():
    rng = numpy.random.default_rng(0)
    spans = ev.random_spans(BIGRAMS, N_TOKENS, 1, rng)
    assert spans == []


def test_evidence_occlusion_tokens_rank_by_drop():
    assert ev.occlusion_tokens([0.0, 0.1, 0.0, 0.7, 0.1], 2) == [(3, 4), (1, 2)]
    # ties keep the earlier token
    assert ev.occlusion_tokens([0.2, 0.2, 0.2], 1) == [(0, 1)]


def test_evidence_doc_faithfulness_exact_on_a_fake_classifier():
    rng = numpy.random.default_rng(0)
    # evidence on the decisive token: removing it loses 0.7, keeping only it
    # keeps all but the 0.1 of "film"
    good = ev.doc_faithfulness(N_TOKENS, UNIGRAMS + BIGRAMS, [(3, 4)], fake_score, rng)
    assert good["comprehensiveness"]["evidence"] == pytest.approx(0.7)
    assert good["sufficiency"]["evidence"] == pytest.approx(0.1)
    # occlusion finds the same token
    assert good["comprehensiveness"]["occlusion"] == pytest.approx(0.7)
    assert good["sufficiency"]["occlusion"] == pytest.approx(0.1)
    # random single tokens hit "good" about one time in five
    assert good["comprehensiveness"]["random"] < 0.7
    assert good["length"]["evidence"] == 1
    # evidence on a token the classifier ignores: nothing lost, nothing kept
    bad = ev.doc_faithfulness(N_TOKENS, UNIGRAMS + BIGRAMS, [(0, 1)], fake_score, rng)
    assert bad["comprehensiveness"]["evidence"] == pytest.approx(0.0)
    assert bad["sufficiency"]["evidence"] == pytest.approx(0.8)
    assert bad["comprehensiveness"]["occlusion"] == pytest.approx(0.7)


def test_evidence_doc_faithfulness_random_is_mean_of_draws():
    """With every candidate covering "good", each random draw loses 0.7."""
    rng = numpy.random.default_rng(0)
    candidates = [(2, 4), (3, 5)]
    out = ev.doc_faithfulness(N_TOKENS, candidates, [(0, 2)], fake_score, rng, n_random=5)
    assert out["comprehensiveness"]["random"] == pytest.approx(0.7)
    assert out["comprehensiveness"]["evidence"] == pytest.approx(0.1)


def test_evidence_mean_results_layout():
    rows = [
        {
            "comprehensiveness": {"evidence": 0.4, "random": 0.1, "occlusion": 0.6},
            "sufficiency": {"evidence": 0.2, "random": 0.3, "occlusion": 0.0},
        },
        {
            "comprehensiveness": {"evidence": 0.2, "random": 0.1, "occlusion": 0.4},
            "sufficiency": {"evidence": 0.0, "random": 0.5, "occlusion": 0.2},
        },
    ]
    result = ev.mean_results(rows, [2.0, 4.0])
    assert set(result) == {"comprehensiveness", "sufficiency", "sharpness"}
    assert set(result["comprehensiveness"]) == {"evidence", "random", "occlusion"}
    assert result["comprehensiveness"]["evidence"] == pytest.approx(0.3)
    assert result["sufficiency"]["random"] == pytest.approx(0.4)
    assert result["sharpness"] == pytest.approx(3.0)


@pytest.mark.parametrize("argv", [["--top-k", "0"], ["--limit", "-1"]])
def test_evidence_cli_rejects_bad_numbers(argv, capsys):
    with pytest.raises(SystemExit):
        ev.parse_args(["--model", "m", "--data", "d.spacy"] + argv)
    assert "must be" in capsys.readouterr().err


DATA = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", {"POLITICS": 1.0, "CULTURE": 0.0}),
    ("The German chancellor visited Paris .", {"POLITICS": 1.0, "CULTURE": 0.0}),
    ("He said the film was good .", {"POLITICS": 0.0, "CULTURE": 1.0}),
    ("The band played a happy song .", {"POLITICS": 0.0, "CULTURE": 1.0}),
]


@pytest.mark.parametrize("factory", ["spanbert_textcat", "spanbert_textcat_multilabel"])
def test_evidence_cli_on_a_tiny_trained_pipeline(tiny_bert, tmp_path, factory):
    from conftest import make_nlp

    nlp = make_nlp(
        tiny_bert,
        {"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 1, "max_size": 2}}},
    )
    nlp.add_pipe(factory)
    fix_random_seed(0)
    examples = [Example.from_dict(nlp.make_doc(text), {"cats": cats}) for text, cats in DATA]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "model")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(tmp_path / "data.spacy")
    out = tmp_path / "evidence.json"
    assert (
        ev.main(
            [
                "--model",
                str(tmp_path / "model"),
                "--data",
                str(tmp_path / "data.spacy"),
                "--top-k",
                "2",
                "--output",
                str(out),
                "--limit",
                "3",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    for metric in ("comprehensiveness", "sufficiency"):
        assert set(result[metric]) == {"evidence", "random", "occlusion"}
        for value in result[metric].values():
            assert -1.0 <= value <= 1.0
    assert result["sharpness"] >= 1.0
    assert result["n_docs"] == 3
    assert result["top_k"] == 2
    assert result["multi_label"] == (factory == "spanbert_textcat_multilabel")
    assert 1 <= result["mean_evidence_tokens"] <= result["mean_doc_tokens"]
    assert result["method"] == "attention" and result["time_ratio_to_prediction"] > 0
    # with --fit: the occlusion estimator is fitted and measured on the same docs
    fitted = tmp_path / "fitted.json"
    argv = ["--model", str(tmp_path / "model"), "--data", str(tmp_path / "data.spacy"), "--output", str(fitted)]
    assert ev.main(argv + ["--fit", str(tmp_path / "data.spacy"), "--timing-rounds", "1"]) == 0
    both = json.loads(fitted.read_text())
    assert list(both["methods"]) == ["attention", "occlusion_estimate"] and both["fit"]["n_docs"] == 4
    assert both["method"] == "occlusion_estimate"  # the top level is the method in use
    estimate = both["methods"]["occlusion_estimate"]
    assert estimate["sharpness"] is None and estimate["mean_evidence_tokens"] <= 3
    assert set(estimate["ratios"]) >= {
        "comprehensiveness_evidence_over_occlusion",
        "sufficiency_evidence_minus_occlusion",
    }
