"""benchmarks/optimize.py: variant names, the interleaving order, the table
and JSON from fake timings, and one end-to-end run on a tiny random BERT
NER pipeline (the real measurements are a benchmark, not a test)."""

import json
import os
import sys
from pathlib import Path

import pytest
import spacy
import torch
from spacy.tokens import DocBin, Span

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import optimize  # noqa: E402

GOLD = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]),
    ("The German chancellor visited Paris .", [(4, 5, "LOC")]),
]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("torch-fp32", ("torch", "none")),
        ("torch-int8", ("torch", "int8")),
        ("onnx-fp32", ("onnx", "none")),
        ("onnx-int8", ("onnx", "int8")),
    ],
)
def test_benchmarks_optimize_parse_variant(name, expected):
    assert optimize.parse_variant(name) == expected


@pytest.mark.parametrize("name", ["onnx", "tensorrt-int8", "torch-int4", "torch_int8"])
def test_benchmarks_optimize_parse_variant_rejects_unknown(name):
    with pytest.raises(ValueError, match=f"unknown variant '{name}'.*e.g. onnx-int8"):
        optimize.parse_variant(name)


def test_benchmarks_optimize_parse_baseline():
    assert optimize.parse_baseline("runs/spacy_ner/model-best") == ("model-best", Path("runs/spacy_ner/model-best"))
    assert optimize.parse_baseline("tok2vec=runs/a/model-best") == ("tok2vec", Path("runs/a/model-best"))
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        optimize.parse_baseline("tok2vec=")


def test_benchmarks_optimize_interleaving_rotates_each_round():
    names = ["a", "b", "c"]
    assert [optimize.round_order(names, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    order = optimize.schedule(names, [1, 16], 2)
    assert order[:6] == [(0, 1, "a"), (0, 1, "b"), (0, 1, "c"), (0, 16, "a"), (0, 16, "b"), (0, 16, "c")]
    assert order[6:9] == [(1, 1, "b"), (1, 1, "c"), (1, 1, "a")]
    assert len(order) == 3 * 2 * 2


def _fake_result():
    settings = {"batch_sizes": [1, 16], "rounds": 2}
    machine = {"torch_threads": 2}
    systems = {
        "torch-fp32": {
            "kind": "variant",
            "rounds_words_per_second": {1: [90.0, 100.0], 16: [400.0, 380.0]},
            "load_seconds": 2.5,
            "peak_rss_mb": 800.0,
            "scores": {"token_f": 1.0, "ents_f": 0.5945, "ents_p": 0.7},
            "agreement": {"ents": 1.0, "top_cat": None},
        },
        "onnx-int8": {
            "kind": "variant",
            "rounds_words_per_second": {1: [150.0, 120.0], 16: [1000.0, 1200.0]},
            "load_seconds": 1.25,
            "peak_rss_mb": 500.0,
            "scores": {"token_f": 1.0, "ents_f": 0.59, "ents_p": 0.69},
            "agreement": {"ents": 0.98, "top_cat": None},
        },
        "spacy_ner": {
            "kind": "baseline",
            "rounds_words_per_second": {1: [50.0, 60.0], 16: [200.0, 100.0]},
            "load_seconds": None,
            "peak_rss_mb": 600.0,
            "scores": {"token_f": 1.0, "ents_f": 0.52},
            "agreement": {"ents": 0.6, "top_cat": None},
        },
    }
    return optimize.assemble(settings, machine, 2, 15, systems)


def test_benchmarks_optimize_json_best_round_and_ratios():
    result = json.loads(json.dumps(_fake_result()))  # what FILE.json holds
    assert set(result) == {"settings", "machine", "n_docs", "n_words", "systems"}
    fast = result["systems"]["onnx-int8"]
    assert fast["words_per_second"] == {"1": 150.0, "16": 1200.0}
    assert fast["ratio_to_torch_fp32"] == {"1": 1.5, "16": 3.0}
    assert fast["main_score"] == {"key": "ents_f", "value": 0.59}
    assert fast["rounds_words_per_second"] == {"1": [150.0, 120.0], "16": [1000.0, 1200.0]}
    assert result["systems"]["torch-fp32"]["ratio_to_torch_fp32"] == {"1": 1.0, "16": 1.0}


def test_benchmarks_optimize_label_lines():
    """Labels of nearby points go on separate lines; distant ones stay on the first."""
    points = {"torch-fp32": (4037, 59.5), "onnx-fp32": (5791, 59.5), "torch-int8": (7558, 59.0)}
    points.update({"onnx-int8": (10293, 59.7), "tok2vec": (24549, 19.3)})
    assert optimize.label_lines(points) == {
        "torch-fp32": 0,
        "onnx-fp32": 1,
        "torch-int8": 0,
        "onnx-int8": 1,
        "tok2vec": 0,
    }
    assert optimize.label_lines({"a": (1.0, 1.0), "b": (1.0, 1.0), "c": (1.0, 1.0)}) == {"a": 0, "b": 1, "c": 2}


def test_benchmarks_optimize_table():
    lines = optimize.table(_fake_result()).splitlines()
    assert lines[0] == "| system | words/s, batch 1 | words/s, batch 16 | peak RSS MB | load s | ents_f |"
    assert lines[2] == "| torch-fp32 | 100 (1.00x) | 400 (1.00x) | 800 | 2.50 | 59.45 |"
    assert lines[3] == "| onnx-int8 | 150 (1.50x) | 1200 (3.00x) | 500 | 1.25 | 59.00 |"
    assert lines[4] == "| spacy_ner | 60 (0.60x) | 200 (0.50x) | 600 | n/a | 52.00 |"


def test_benchmarks_optimize_table_without_torch_fp32_has_no_ratios():
    result = _fake_result()
    del result["systems"]["torch-fp32"]
    result = optimize.assemble(result["settings"], result["machine"], 2, 15, result["systems"])
    assert "| onnx-int8 | 150 | 1200 | 500 | 1.25 | 59.00 |" in optimize.table(result)


@pytest.mark.parametrize(
    "scores,expected",
    [
        ({"token_f": 1.0, "ents_f": 0.4, "cats_score": 0.9}, ("ents_f", 0.4)),
        ({"token_f": 1.0, "ents_f": None, "cats_score": 0.9}, ("cats_score", 0.9)),
        ({"token_f": 1.0, "spans_spanbert_ner_f": 0.3}, ("spans_spanbert_ner_f", 0.3)),
        ({"token_f": 1.0}, (None, None)),
    ],
)
def test_benchmarks_optimize_main_score(scores, expected):
    assert optimize.main_score(scores) == expected


def test_benchmarks_optimize_agreement_and_accuracy():
    nlp = spacy.blank("en")
    a, b, c = (nlp("Angela Merkel met Macron") for _ in range(3))
    a.ents, b.ents = [Span(a, 0, 2, "PER")], [Span(b, 0, 2, "PER")]
    c.ents = [Span(c, 3, 4, "PER")]
    a.cats, b.cats, c.cats = {"X": 0.9, "Y": 0.1}, {"X": 0.6, "Y": 0.4}, {"X": 0.2, "Y": 0.8}
    assert optimize.agreement([a, a, a], [a, b, c]) == {"ents": 2 / 3, "top_cat": 2 / 3}
    gold = nlp("Angela Merkel met Macron")
    gold.cats = {"X": 1.0, "Y": 0.0}
    assert optimize.cats_accuracy([a, c], [gold, gold]) == 0.5
    assert optimize.cats_accuracy([a], [nlp("no cats")]) is None


@pytest.fixture(scope="module")
def ner_pipeline(tiny_bert, tmp_path_factory):
    """A briefly trained transformer -> spanbert -> spanbert_ner pipeline
    (as tests/test_optimize.py makes it) and a .spacy file of 2 gold docs."""
    from conftest import train_ner_pipeline

    nlp, examples = train_ner_pipeline(tiny_bert, GOLD, n_iter=5)
    folder = tmp_path_factory.mktemp("bench_optimize")
    nlp.to_disk(folder / "original")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(folder / "gold.spacy")
    return folder


def test_benchmarks_optimize_end_to_end(ner_pipeline, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # onnx-fp32 would add a fresh process (about 5 s); tests/test_optimize.py covers the runtime
    variants = ["torch-fp32", "torch-int8"]
    output = tmp_path / "out" / "optimize.json"
    argv = ["--model", str(ner_pipeline / "original"), "--data", str(ner_pipeline / "gold.spacy")]
    argv += ["--output", str(output), "--variants", *variants, "--batch-sizes", "1", "2", "--rounds", "1"]
    threads = torch.get_num_threads()
    try:
        assert optimize.main([*argv, "--threads", "1", "--transformer-alone"]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(output.read_text(encoding="utf8"))
    assert set(result) == {"settings", "machine", "n_docs", "n_words", "systems"}
    assert result["n_docs"] == 2 and result["n_words"] == 14
    assert result["settings"]["batch_sizes"] == [1, 2] and result["settings"]["threads"] == 1
    assert result["machine"]["torch_threads"] == 1
    alone = [name + optimize.ALONE for name in variants]
    assert list(result["systems"]) == variants + alone
    for name in alone:  # timed, not scored
        row = result["systems"][name]
        assert row["kind"] == "transformer_alone" and "scores" not in row and row["agreement"] is None
        assert all(v > 0 for v in row["words_per_second"].values())
    for name in variants:
        row = result["systems"][name]
        share = row["share_of_transformer_alone"]
        assert share == {
            b: row["words_per_second"][b] / result["systems"][name + optimize.ALONE]["words_per_second"][b]
            for b in ("1", "2")
        }
        assert set(row["words_per_second"]) == {"1", "2"} and all(v > 0 for v in row["words_per_second"].values())
        assert row["load_seconds"] > 0 and row["peak_rss_mb"] > 50
        assert row["main_score"]["key"] == "ents_f" and 0 <= row["main_score"]["value"] <= 1
        assert {"ents_f", "ents_p", "ents_r", "ents_per_type"} <= set(row["scores"])
        assert "cats_accuracy" not in row["scores"]  # no categories in an NER pipeline
        assert 0 <= row["agreement"]["ents"] <= 1 and row["agreement"]["top_cat"] is None
    original = result["systems"]["torch-fp32"]
    assert original["built"] == "original" and original["agreement"]["ents"] == 1.0
    assert result["systems"]["torch-int8"]["built"] == "built"
    assert (tmp_path / "out" / "optimize-variants" / "torch-int8" / "meta.json").is_file()
    captured = capsys.readouterr()
    assert output.with_suffix(".png").is_file() or "matplotlib is not installed" in captured.err
    assert "| system | words/s, batch 1 | words/s, batch 2 |" in captured.out and "| torch-int8 |" in captured.out
    assert "torch-int8 keeps " in captured.out
    # a second run reuses the variant it built
    built = optimize.build_variants(ner_pipeline / "original", ["torch-int8"], tmp_path / "out" / "optimize-variants")
    assert built["torch-int8"]["built"] == "reused"


def test_benchmarks_optimize_reuses_only_matching_newer_variants(ner_pipeline, tmp_path):
    work = tmp_path / "work"
    optimize.build_variants(ner_pipeline / "original", ["torch-int8"], work)
    (work / "torch-fp32-copy").mkdir()
    assert optimize.reusable(work / "torch-int8", ner_pipeline / "original", "torch", "int8")
    assert not optimize.reusable(work / "torch-int8", ner_pipeline / "original", "onnx", "int8")
    assert not optimize.reusable(work / "torch-fp32-copy", ner_pipeline / "original", "torch", "none")
    os.utime(ner_pipeline / "original" / "meta.json")  # the source changed after the build
    meta = work / "torch-int8" / "meta.json"
    os.utime(meta, (meta.stat().st_atime, meta.stat().st_mtime - 10))
    assert not optimize.reusable(work / "torch-int8", ner_pipeline / "original", "torch", "int8")


def _error_case(case, folder, tmp_path):
    """The command line of a bad `case`, with the trained pipeline in `folder`."""
    model, data, output = folder / "original", folder / "gold.spacy", tmp_path / "r.json"
    if case == "missing model":
        model = tmp_path / "missing"
    elif case == "missing data":
        data = tmp_path / "missing.spacy"
    elif case == "empty data":
        data = tmp_path / "empty.spacy"
        DocBin().to_disk(data)
    elif case == "no transformer":
        model = tmp_path / "blank"
        blank = spacy.blank("en")
        blank.add_pipe("sentencizer")
        blank.to_disk(model)
    argv = ["--model", str(model), "--data", str(data), "--output", str(output)]
    if case == "unknown variant":
        argv += ["--variants", "gpu-fp16"]
    elif case == "missing baseline":
        argv += ["--baselines", f"tok2vec={tmp_path / 'missing'}"]
    return argv


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing model", "no such pipeline folder"),
        ("missing data", "no such file"),
        ("empty data", "the file holds no docs"),
        ("no transformer", "no spacy-transformers 'transformer' component"),
        ("unknown variant", "unknown variant 'gpu-fp16'"),
        ("missing baseline", "--baselines tok2vec="),
    ],
)
def test_benchmarks_optimize_clear_errors(case, message, ner_pipeline, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        optimize.parse_args(_error_case(case, ner_pipeline, tmp_path))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_benchmarks_component_cost(ner_pipeline, tmp_path, capsys):
    import component_cost

    output = tmp_path / "cost.json"
    argv = ["--model", str(ner_pipeline / "original"), "--data", str(ner_pipeline / "gold.spacy")]
    argv += ["--without", "spanbert", "spanbert_ner", "--output", str(output), "--batch-sizes", "2", "--rounds", "2"]
    assert component_cost.main(argv) == 0
    result = json.loads(output.read_text(encoding="utf8"))
    assert result["pipe_names"] == {"full": ["transformer", "spanbert", "spanbert_ner"], "without": ["transformer"]}
    assert len(result["rounds_words_per_second"]["full"]["2"]) == 2
    best = result["words_per_second"]
    assert result["share_kept"]["2"] == pytest.approx(best["full"]["2"] / best["without"]["2"])
    assert "| share kept |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not in the pipeline"):
        component_cost.main([*argv[:4], "--without", "ner", "--output", str(output)])


def test_benchmarks_factory_pipeline(tiny_bert, ner_pipeline, tmp_path, capsys):
    """factory_pipeline.py writes transformer -> spanbert -> spanbert_ner at
    the factory defaults, initialised and loadable."""
    import factory_pipeline

    from spacy_spanbert.encoder import DEFAULT_SPANBERT_MODEL_CONFIG

    out = tmp_path / "factory"
    argv = ["--encoder", tiny_bert, "--train", str(ner_pipeline / "gold.spacy"), "--output", str(out)]
    assert factory_pipeline.main([*argv, "--n-docs", "1"]) == 0
    assert "initialised on 1 docs" in capsys.readouterr().out
    nlp = spacy.load(out)
    assert nlp.pipe_names == ["transformer", "spanbert", "spanbert_ner"]
    model = nlp.get_pipe("spanbert").model
    assert (
        model.attrs["n_layers"] == spacy.util.load_config_from_str(DEFAULT_SPANBERT_MODEL_CONFIG)["model"]["n_layers"]
    )
    assert nlp.get_pipe("spanbert_ner").labels == ("LOC", "PER")
    assert len(nlp("Emmanuel Macron visited Berlin .").spans["spanbert"]) > 0
    with pytest.raises(SystemExit):
        factory_pipeline.main([*argv, "--n-docs", "0"])
