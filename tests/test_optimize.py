"""`spacy spanbert optimize` and the optimized transformer: a tiny trained
transformer -> spanbert -> spanbert_ner pipeline, optimized each way, must
load alone, follow the original within tolerance and refuse training."""

import json
import os
import random
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from thinc.api import Adam
from typer.testing import CliRunner

from spacy_spanbert.commands.optimize import META_KEY, compare_pipelines, optimize_pipeline
from spacy_spanbert.optimize import ARCHITECTURE

FLAT = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]),
    ("The German chancellor visited Paris .", [(4, 5, "LOC")]),
    ("Apple is a company in New York .", [(0, 1, "ORG"), (5, 7, "LOC")]),
]
# Largest absolute difference of transformer outputs and span vectors from
# the original: fp32 ONNX within the 1e-4; int8 (weights and, per
# batch, activations quantized) measured at about 2e-3 on this model.
TOLERANCE = {"none": 1e-4, "int8": 1e-2}
VARIANTS = [("torch", "int8"), ("torch", "none"), ("onnx", "none"), ("onnx", "int8")]


def _texts():
    from conftest import WORDS

    rng = random.Random(0)
    made = [
        " ".join(w.title() if rng.random() < 0.3 else w for w in rng.choices(WORDS, k=rng.randint(1, 14)))
        for _ in range(40)
    ]
    return [text for text, _ in FLAT] + made


def _ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def _vectors(doc):
    return doc.spans["spanbert"].attrs["vectors"]


def _needs(runtime):
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """A trained pipeline's folder, and a calibration file of its texts."""
    from conftest import train_ner_pipeline

    nlp, _ = train_ner_pipeline(tiny_bert, FLAT, n_iter=30)
    folder = tmp_path_factory.mktemp("optimize")
    nlp.to_disk(folder / "original")
    DocBin(docs=[nlp.make_doc(t) for t in _texts()]).to_disk(folder / "calibration.spacy")
    return folder


@pytest.fixture(scope="module")
def optimized(trained):
    """optimized(runtime, quantize) -> (folder, record), made once per variant."""
    made = {}

    def get(runtime, quantize):
        _needs(runtime)
        if (runtime, quantize) not in made:
            out = trained / f"{runtime}-{quantize}"
            record = optimize_pipeline(
                trained / "original",
                out,
                runtime=runtime,
                quantize=quantize,
                calibration=trained / "calibration.spacy",
            )
            made[runtime, quantize] = (out, record)
        return made[runtime, quantize]

    return get


@pytest.mark.parametrize("runtime,quantize", VARIANTS)
def test_optimize_outputs_follow_original(trained, optimized, runtime, quantize):
    folder, _ = optimized(runtime, quantize)
    report = compare_pipelines(spacy.load(trained / "original"), spacy.load(folder), _texts())
    assert report["n_docs"] == len(_texts())
    assert report["max_transformer_diff"] <= TOLERANCE[quantize]
    assert report["max_span_vector_diff"] <= TOLERANCE[quantize]
    assert report["ents_agreement"] >= 0.97
    if quantize == "int8":  # the weights really are quantized
        assert report["max_transformer_diff"] > 1e-5


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_optimize_fp32_entities_identical(trained, optimized, runtime):
    folder, _ = optimized(runtime, "none")
    original, fast = spacy.load(trained / "original"), spacy.load(folder)
    texts = _texts()
    assert [_ents(d) for d in fast.pipe(texts)] == [_ents(d) for d in original.pipe(texts)]


@pytest.mark.parametrize("runtime,quantize", VARIANTS)
def test_optimize_batch_size_invariance(optimized, runtime, quantize):
    nlp = spacy.load(optimized(runtime, quantize)[0])
    texts = _texts()
    one, eight = list(nlp.pipe(texts, batch_size=1)), list(nlp.pipe(texts, batch_size=8))
    diff = max(float(numpy.abs(_vectors(a) - _vectors(b)).max(initial=0.0)) for a, b in zip(one, eight))
    assert diff <= TOLERANCE[quantize]
    agree = sum(_ents(a) == _ents(b) for a, b in zip(one, eight)) / len(texts)
    assert agree >= 0.97


@pytest.mark.parametrize("runtime,quantize", [("torch", "int8"), ("onnx", "int8")])
def test_optimize_meta_records_how(optimized, runtime, quantize):
    folder, record = optimized(runtime, quantize)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf8"))
    saved = meta[META_KEY]
    assert saved["runtime"] == runtime and saved["quantize"] == quantize
    assert saved["components"] == ["transformer"]
    assert saved["source"]["path"].endswith("original")
    assert "torch" in saved["versions"] and "spacy-spanbert" in saved["versions"]
    assert saved["calibration"]["n_docs"] == len(_texts())
    assert saved["calibration"]["ents_agreement"] >= 0.97
    # meta.json rounds the floats of the calibration report
    assert saved["calibration"]["max_transformer_diff"] == pytest.approx(record["calibration"]["max_transformer_diff"])
    assert {k: v for k, v in saved.items() if k != "calibration"} == {
        k: v for k, v in record.items() if k != "calibration"
    }
    assert ("onnxruntime>=1.16" in meta.get("requirements", [])) == (runtime == "onnx")
    config = spacy.util.load_config(folder / "config.cfg")
    model = config["components"]["transformer"]["model"]
    assert model["@architectures"] == ARCHITECTURE
    assert (model["runtime"], model["quantize"]) == (runtime, quantize)


@pytest.mark.parametrize("runtime,quantize", [("torch", "int8"), ("onnx", "int8")])
def test_optimize_loads_in_fresh_process(optimized, runtime, quantize):
    folder, _ = optimized(runtime, quantize)
    code = (
        "import spacy, sys; nlp = spacy.load(sys.argv[1]); "
        "doc = nlp('Angela Merkel met Emmanuel Macron in Berlin .'); "
        "print(type(nlp.get_pipe('transformer').model.layers[0].shims[0]).__name__, len(doc.spans['spanbert']))"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "OptimizedHFShim"


@pytest.mark.parametrize("runtime,quantize", [("torch", "int8"), ("onnx", "none")])
def test_optimize_training_raises(optimized, runtime, quantize):
    nlp = spacy.load(optimized(runtime, quantize)[0])
    text, ents = FLAT[0]
    ref = nlp.make_doc(text)
    ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
    with pytest.raises(ValueError, match=r"E706.*inference"):
        nlp.update([Example(nlp.make_doc(text), ref)], sgd=Adam(0.001))


@pytest.mark.parametrize("runtime,quantize", [("torch", "int8"), ("onnx", "int8")])
def test_optimize_round_trips(optimized, runtime, quantize, tmp_path):
    nlp = spacy.load(optimized(runtime, quantize)[0])
    texts = _texts()[:8]
    expected = [_vectors(d) for d in nlp.pipe(texts)]
    copy = spacy.util.load_model_from_config(nlp.config).from_bytes(nlp.to_bytes())
    for want, doc in zip(expected, copy.pipe(texts)):
        numpy.testing.assert_array_equal(_vectors(doc), want)


def test_optimize_weights_not_unpickled(optimized, tmp_path):
    from conftest import check_tampered_weights_rejected

    nlp = spacy.load(optimized("torch", "int8")[0])
    check_tampered_weights_rejected(nlp, tmp_path, "transformer", checksum_error="E051", format_error="E050")


def test_optimize_onnx_n_process(optimized):
    nlp = spacy.load(optimized("onnx", "int8")[0])
    texts = _texts()[:12]
    expected = [_ents(d) for d in nlp.pipe(texts, batch_size=4)]
    assert [_ents(d) for d in nlp.pipe(texts, batch_size=4, n_process=2)] == expected


def test_optimize_config_mismatch_raises(optimized, tmp_path):
    folder, _ = optimized("torch", "int8")
    nlp = spacy.load(folder)
    config = nlp.config.copy()
    config["components"]["transformer"]["model"]["quantize"] = "none"
    other = spacy.util.load_model_from_config(config)
    with pytest.raises(ValueError, match="E709"):
        other.from_bytes(nlp.to_bytes())


@pytest.mark.parametrize(
    "options,match",
    [({"runtime": "tensorrt"}, "E700"), ({"quantize": "int4"}, "E701")],
)
def test_optimize_bad_settings_raise(trained, tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        optimize_pipeline(trained / "original", tmp_path / "out", **options)


def test_optimize_refuses_bad_inputs(trained, optimized, tmp_path, nlp_factory):
    with pytest.raises(ValueError, match="E707"):
        optimize_pipeline(trained / "original", trained / "original")
    with pytest.raises(ValueError, match="E708.*no such file"):
        optimize_pipeline(trained / "original", tmp_path / "out", calibration=tmp_path / "missing.spacy")
    with pytest.raises(ValueError, match="E704"):
        optimize_pipeline(optimized("torch", "int8")[0], tmp_path / "again")
    blank = spacy.blank("en")
    blank.to_disk(tmp_path / "blank")
    with pytest.raises(ValueError, match="E703"):
        optimize_pipeline(tmp_path / "blank", tmp_path / "out")


def test_optimize_cli(trained, tmp_path):
    from spacy.cli._util import app

    import spacy_spanbert.commands.optimize.cli  # noqa: F401  (registers the command)

    out = tmp_path / "not" / "yet" / "cli"  # parent folders are made
    args = ["spanbert", "optimize", str(trained / "original"), str(out)]
    result = CliRunner().invoke(app, [*args, "--runtime", "torch", "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert spacy.load(out).meta[META_KEY]["quantize"] == "int8"
    bad = CliRunner().invoke(app, [*args, "--runtime", "x"])
    assert bad.exit_code == 1 and "E700" in bad.output
