"""benchmarks/accuracy.py builds valid configs for both systems of every task
(training itself is a benchmark, not a test)."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import spacy

import spacy_spanbert  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import accuracy  # noqa: E402

EXPECTED = {
    ("ner", "spacy"): "ner",
    ("nested", "spacy"): "spancat",
    ("textcat", "spacy"): "textcat",
    ("multilabel", "spacy"): "textcat_multilabel",
    ("ner", "spanbert"): "spanbert_ner",
    ("nested", "spanbert"): "spanbert_ner",
    ("textcat", "spanbert"): "textcat",
    ("multilabel", "spanbert"): "textcat_multilabel",
}


def _accuracy_argv(task, train, dev, encoder, output, *options):
    """The command line of benchmarks/accuracy.py for `task`, plus `options`."""
    return [task, "--train", str(train), "--dev", str(dev), "--encoder", encoder, "--output", str(output), *options]


@pytest.mark.parametrize("task,system", sorted(EXPECTED))
def test_accuracy_benchmark_configs_are_valid_and_share_the_budget(task, system, tmp_path, tiny_bert):
    data = tmp_path / "data.spacy"
    _write_task_data(task, data, 3)
    args = accuracy.parse_args(_accuracy_argv(task, data, data, tiny_bert, tmp_path / "out", "--steps", "50"))
    config = accuracy.build_config(task, system, args, tmp_path / "curve.jsonl")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names[0] == "transformer" and nlp.pipe_names[-1] == EXPECTED[(task, system)]
    training = config["training"]
    assert training["max_steps"] == 50 and training["optimizer"]["learn_rate"]["total_steps"] == 50
    assert training["batcher"]["size"] == 1000 and training["patience"] == 0
    transformer = config["components"]["transformer"]["model"]
    assert transformer["name"] == tiny_bert
    assert transformer["tokenizer_config"]["do_lower_case"] is True  # read from the tokenizer config
    # checkpoints are chosen by one score: F for spans, spaCy's cats_score
    # (macro F for these label sets) for text classification
    selected = {"ner": "ents_f", "nested": "spans_spanbert_ner_f"}.get(task, "cats_score")
    assert {k: v for k, v in training["score_weights"].items() if v} == {selected: 1.0}


def test_accuracy_table_reports_differences():
    results = {
        "systems": {
            "spanbert": {
                "dev": {"ents_f": 0.5, "ents_p": 0.6, "ents_r": 0.4},
                "train_seconds": 20.0,
                "words_per_second": 100.0,
            },
            "spacy": {
                "dev": {"ents_f": 0.4, "ents_p": 0.5, "ents_r": 0.3},
                "train_seconds": 10.0,
                "words_per_second": 200.0,
            },
        }
    }
    table = accuracy.table("ner", results)
    assert "| spanbert - spacy | +10.00 | +10.00 | +10.00 | x2.00 | x0.50 |" in table


def test_accuracy_settings_change_the_spanbert_system_only(tmp_path, tiny_bert):
    data = tmp_path / "data.spacy"
    data.write_bytes(b"")
    common = _accuracy_argv("ner", data, data, tiny_bert, tmp_path / "out", "--steps", "50")
    args = accuracy.parse_args(
        common
        + [
            "--set",
            "components.spanbert.model.n_layers=0",
            "--set",
            "components.spanbert_ner.threshold=0.25",
            "--set",
            "training.max_steps=7",
        ]
    )
    assert args.overrides["components.spanbert.model.n_layers"] == 0
    config = accuracy.build_config("ner", "spanbert", args, tmp_path / "curve.jsonl")
    assert config["components"]["spanbert"]["model"]["n_layers"] == 0
    assert config["components"]["spanbert_ner"]["threshold"] == 0.25
    assert config["training"]["max_steps"] == 50  # the budget options win
    baseline = accuracy.build_config("ner", "spacy", args, tmp_path / "curve.jsonl")
    assert set(baseline["components"]) == {"transformer", "ner"}
    for bad in ["n_layers=0", "nosuch.section=1"]:
        with pytest.raises(SystemExit):
            accuracy.parse_args(common + ["--set", bad])


def test_accuracy_warns_about_long_training_docs(tmp_path):
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    path = tmp_path / "train.spacy"
    DocBin(docs=[nlp.make_doc("a " * n) for n in (5, 30, 12)]).to_disk(path)
    message = accuracy.long_docs_warning(path, 0, threshold=10)
    assert "has 2 training doc(s) of 10 tokens or more (the longest: 30)" in message
    assert "--set corpora.train.max_length=2000" in message
    assert accuracy.long_docs_warning(path, 0, threshold=31) is None
    # corpora.train.max_length = 12 already skips the 12- and 30-token docs
    assert accuracy.long_docs_warning(path, 12, threshold=10) is None
    assert "has 1 training doc(s) of 10 tokens or more (the longest: 12)" in accuracy.long_docs_warning(
        path, 30, threshold=10
    )
    # a folder of .spacy files, as spaCy's corpus reader accepts
    folder = tmp_path / "folder"
    folder.mkdir()
    DocBin(docs=[nlp.make_doc("a " * 40)]).to_disk(folder / "part1.spacy")
    DocBin(docs=[nlp.make_doc("a " * 3)]).to_disk(folder / "part2.spacy")
    assert "has 1 training doc(s) of 10 tokens or more (the longest: 40)" in accuracy.long_docs_warning(
        folder, 0, threshold=10
    )


def test_speed_systems_set_the_encoder_settings_they_name(tiny_bert):
    import speed

    nlp = speed.build(tiny_bert, "+spanbert(n_layers=0,hidden_width=16)+spanbert_ner")
    model = nlp.get_pipe("spanbert").model
    assert model.attrs["n_layers"] == 0 and model.get_dim("nO") == 16
    assert speed.build(tiny_bert, "+spanbert").get_pipe("spanbert").model.attrs["n_layers"] == 1


def test_speed_pipelines_pass_no_span_over_threshold_like_a_trained_head(tiny_bert):
    """speed.py's untrained NER head must not build a Span per candidate in
    set_annotations (a trained head passes a few spans, not half of them)."""
    import speed

    texts = [speed.make_text(20 + i, i) for i in range(4)]
    for system in [name for name in speed.SYSTEMS if "spanbert_ner" in name]:
        nlp = speed.build(tiny_bert, system)
        docs = list(nlp.pipe(texts))
        assert sum(len(doc.spans["spanbert"]) for doc in docs) > 100
        assert sum(len(doc.spans["spanbert_ner"]) for doc in docs) == 0
        assert all(len(doc.ents) == 0 for doc in docs)


def _write_task_data(task, path, n_docs, spans_key=accuracy.SPANS_KEY):
    """A tiny DocBin with the annotation TASK trains on."""
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("en")
    texts = ["Angela Merkel visited Paris today .", "Apple opened a shop in New York .", "The film was good ."]
    db = DocBin(store_user_data=True)
    for i in range(n_docs):
        doc = nlp.make_doc(texts[i % len(texts)])
        if task == "ner":
            doc.ents = (
                [Span(doc, 0, 2, label="PER")] if i % 3 == 0 else [Span(doc, 0, 1, label="ORG")] if i % 3 == 1 else []
            )
        elif task == "nested":
            doc.spans[spans_key] = [
                Span(doc, 0, 2, label="PER"),
                Span(doc, 1, 2, label="PER"),
                Span(doc, 3, 4, label="LOC"),
            ]
        elif task == "textcat":
            doc.cats = {"POS": float(i % 2 == 0), "NEG": float(i % 2 == 1)}
        else:
            doc.cats = {"A": float(i % 2 == 0), "B": float(i % 3 == 0), "C": 0.0}
        db.add(doc)
    db.to_disk(path)


# spaCy's score names, which results.json promises per task
EXPECTED_SCORES = {
    "ner": ["ents_f", "ents_p", "ents_r"],
    "nested": [f"spans_{accuracy.SPANS_KEY}_f", f"spans_{accuracy.SPANS_KEY}_p", f"spans_{accuracy.SPANS_KEY}_r"],
    "textcat": ["cats_score", "cats_macro_f", "accuracy"],
    "multilabel": ["cats_score", "cats_macro_f", "cats_macro_auc"],
}


@pytest.mark.parametrize("task", sorted(EXPECTED_SCORES))
def test_accuracy_command_line_end_to_end(task, tmp_path, tiny_bert, capsys):
    """The stable command line, run for real on a tiny encoder and corpus:
    both systems train, and results.json has the documented layout."""
    import srsly

    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    _write_task_data(task, train, 6)
    _write_task_data(task, dev, 3)
    out = tmp_path / "out"
    argv = _accuracy_argv(
        task, train, dev, tiny_bert, out, "--test", str(dev), "--steps", "2", "--eval-frequency", "1", "--seed", "3"
    )
    assert accuracy.main(argv) == 0
    results = srsly.read_json(out / "results.json")
    assert results["task"] == task and results["encoder"] == tiny_bert
    assert results["budget"]["steps"] == 2 and results["budget"]["seed"] == 3
    assert set(results["systems"]) == {"spanbert", "spacy"}
    for name, system in results["systems"].items():
        for split in ("dev", "test"):
            missing = [key for key in EXPECTED_SCORES[task] if key not in system[split]]
            assert not missing, (name, split, missing)
        assert system["train_seconds"] > 0 and system["words_per_second"] > 0
        assert system["curve"], name
    assert "| spanbert - spacy |" in capsys.readouterr().out
    if importlib.util.find_spec("matplotlib"):
        assert (out / "learning_curve.png").stat().st_size > 0


def test_speed_command_line_end_to_end(tmp_path, tiny_bert, capsys):
    """speed.py run for real on a tiny encoder: every system gets words/s and
    a ratio at each batch size, each component of the compared pipelines a
    time per doc, and the scaling rows (each doc length in a fresh process)
    report time and memory."""
    import json

    import speed

    out = tmp_path / "speed"
    argv = [
        "--encoder",
        tiny_bert,
        "--output",
        str(out),
        "--repeats",
        "1",
        "--docs",
        "4",
        "--batch-sizes",
        "1",
        "2",
        "--lengths",
        "40",
        "80",
        "--huge-chars",
        "600",
    ]
    assert speed.main(argv) == 0
    result = json.loads((out / "speed.json").read_text())
    assert set(result["throughput"]) == {"1", "2"}
    for row in result["throughput"].values():
        assert all(row[name] > 0 for name in speed.SYSTEMS)
        assert row["ratios_to_transformer"]["transformer"] == 1.0
    assert set(result["components"]) == {"1", "2"}
    for row in result["components"].values():
        assert set(row) == set(speed.COMPONENT_SYSTEMS)
        assert list(row["+ner (spaCy)"]) == ["transformer", "ner"]
        assert all(value > 0 for times in row.values() for value in times.values())
    assert set(result["scaling"]) == {"40", "80", "600 chars"}
    assert result["scaling"]["80"]["tokens"] == 80 and result["scaling"]["80"]["spans"] > 0
    assert result["scaling"]["80"]["length_ratio"] == 2.0
    assert all(row["seconds"] > 0 and row["peak_rss_growth_mb"] >= 0 for row in result["scaling"].values())
    assert all(row["seconds"] <= row["first_seconds"] for row in result["scaling"].values())
    printed = capsys.readouterr().out
    assert "| batch size |" in printed and "| doc | tokens |" in printed
    assert "| 2 | +ner (spaCy) |" in printed


def test_benchmarks_name_a_missing_encoder_folder(tmp_path, capsys):
    import speed

    data = tmp_path / "data.spacy"
    data.write_bytes(b"")
    missing = str(tmp_path / "no-model")
    with pytest.raises(SystemExit):
        accuracy.parse_args(_accuracy_argv("ner", data, data, missing, tmp_path / "out"))
    assert f"--encoder {missing}: no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.main(["--encoder", missing, "--output", str(tmp_path / "speed")])
    assert f"--encoder {missing}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "speed").exists()


def test_accuracy_nested_finds_the_gold_span_key(tmp_path):
    from spacy.tokens import DocBin

    default, sc, other = (tmp_path / f"{name}.spacy" for name in ("default", "sc", "other"))
    _write_task_data("nested", default, 2)
    _write_task_data("nested", sc, 2, spans_key="sc")
    _write_task_data("nested", other, 2, spans_key="other")
    both = tmp_path / "both.spacy"
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(sc).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["other"] = list(doc.spans["sc"])[:1]
    DocBin(docs=docs).to_disk(both)
    flat = tmp_path / "flat.spacy"
    _write_task_data("ner", flat, 3)

    assert accuracy.gold_spans_key(default, default, None, None) == accuracy.SPANS_KEY
    assert accuracy.gold_spans_key(sc, sc, sc, None) == "sc"
    assert accuracy.gold_spans_key(both, sc, None, "sc") == "sc"
    assert accuracy.gold_spans_key(sc, flat, None, None) == "sc"  # dev without span groups: scored as empty
    with pytest.raises(ValueError, match="several span groups .*'other'.*'sc'.*--spans-key"):
        accuracy.gold_spans_key(both, sc, None, None)
    with pytest.raises(ValueError, match="no span group with spans.*use the ner task"):
        accuracy.gold_spans_key(flat, flat, None, None)
    with pytest.raises(ValueError, match="--spans-key 'nope': no spans under that key"):
        accuracy.gold_spans_key(sc, sc, None, "nope")
    with pytest.raises(ValueError, match="--test .* has no spans under 'sc'"):
        accuracy.gold_spans_key(sc, sc, other, None)
    bad = tmp_path / "bad.spacy"
    bad.write_bytes(b"not a docbin")
    with pytest.raises(ValueError, match="cannot read .*bad.spacy as a spaCy DocBin"):
        accuracy.gold_spans_key(bad, sc, None, None)


def test_accuracy_nested_other_key_reaches_both_systems(tmp_path, tiny_bert, capsys):
    data = tmp_path / "sc.spacy"
    _write_task_data("nested", data, 3, spans_key="sc")
    args = accuracy.parse_args(_accuracy_argv("nested", data, data, tiny_bert, tmp_path))
    assert args.spans_key == "sc"
    for system, component in (("spanbert", "spanbert_ner"), ("spacy", "spancat")):
        config = accuracy.build_config("nested", system, args, tmp_path / "curve.jsonl")
        spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
        assert config["components"][component]["spans_key"] == "sc"
        weights = {k: v for k, v in config["training"]["score_weights"].items() if v}
        assert weights == {"spans_sc_f": 1.0}, system
    assert accuracy.task_spec("nested", "sc")["report"] == ["spans_sc_f", "spans_sc_p", "spans_sc_r"]
    with pytest.raises(SystemExit):
        accuracy.parse_args(_accuracy_argv("ner", data, data, tiny_bert, tmp_path, "--spans-key", "sc"))
    assert "--spans-key is for the nested task only" in capsys.readouterr().err


def test_accuracy_nested_gold_key_named_like_the_candidates(tmp_path, tiny_bert):
    data = tmp_path / "spanbert.spacy"
    _write_task_data("nested", data, 3, spans_key="spanbert")
    args = accuracy.parse_args(_accuracy_argv("nested", data, data, tiny_bert, tmp_path))
    config = accuracy.build_config("nested", "spanbert", args, tmp_path / "curve.jsonl")
    spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    components = config["components"]
    assert components["spanbert_ner"]["spans_key"] == "spanbert"
    assert components["spanbert"]["spans_key"] == "spanbert_candidates"


def test_accuracy_textcat_rejects_data_it_cannot_train_before_training(tmp_path, tiny_bert, capsys):
    """Multi-label docs given to the exclusive textcat task, or training docs
    without doc.cats, fail in argument parsing with the fix, not with spaCy's
    E895 in the middle of training."""
    textcat, multilabel, ner = (tmp_path / f"{name}.spacy" for name in ("textcat", "multilabel", "ner"))
    _write_task_data("textcat", textcat, 3)
    _write_task_data("multilabel", multilabel, 3)
    _write_task_data("ner", ner, 3)

    def parse(task, train, dev, test=None):
        argv = _accuracy_argv(task, train, dev, tiny_bert, tmp_path / "out")
        return accuracy.parse_args(argv + (["--test", str(test)] if test else []))

    assert parse("textcat", textcat, textcat).task == "textcat"
    assert parse("multilabel", multilabel, multilabel).task == "multilabel"
    for argv, message in [
        (
            ("textcat", multilabel, textcat),
            "1 of the 3 docs of --train .* more than one positive label .*Use the multilabel task",
        ),
        (("textcat", textcat, textcat, multilabel), "docs of --test .* more than one positive label"),
        (("multilabel", ner, multilabel), "none of the 3 docs of --train .* has doc.cats"),
    ]:
        with pytest.raises(SystemExit):
            parse(*argv)
        assert re.search(message, capsys.readouterr().err), message
    assert not (tmp_path / "out").exists()


def _pretrain_benchmark():
    # loaded under its own name, not as a top-level `pretrain` module
    spec = importlib.util.spec_from_file_location(
        "pretrain_benchmark", Path(__file__).parent.parent / "benchmarks" / "pretrain.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pretrain_benchmark_args(bench, tmp_path, *options):
    """The pretrain benchmark's arguments for the wnut17 dataset, its data
    and output folders in tmp_path, plus `options`."""
    return bench.parse_args(
        [
            "--encoder",
            "enc",
            "--output",
            str(tmp_path / "out"),
            "--data",
            str(tmp_path / "data"),
            "--datasets",
            "wnut17",
            *options,
        ]
    )


def test_pretrain_benchmark_reuses_only_runs_with_its_budget(tmp_path, monkeypatch):
    """A fine-tuning run in the output folder is reused for the same budget
    and redone for another, and each dataset's table names its own budget,
    so one results file can gather datasets run with different budgets."""
    import srsly

    bench = _pretrain_benchmark()
    (tmp_path / "data" / "wnut17").mkdir(parents=True)
    commands = []

    def fake_run(command, log):
        commands.append(command)
        out = Path(command[command.index("--output") + 1])
        steps = int(command[command.index("--steps") + 1])
        srsly.write_json(
            out / "results.json",
            {
                "budget": {"steps": steps, "batch_words": int(command[command.index("--batch-words") + 1])},
                "systems": {"spanbert": {"dev": {"ents_f": steps}, "train_seconds": 1.0}},
            },
        )
        return 1.0

    monkeypatch.setattr(bench, "run", fake_run)

    def finetune(steps):
        args = _pretrain_benchmark_args(bench, tmp_path, "--finetune-steps", str(steps))
        (tmp_path / "out" / "finetune" / "wnut17" / "none" / "seed0").mkdir(parents=True, exist_ok=True)
        return bench.finetune(args, "wnut17", "none", 0, "enc", {"train": "t", "dev": "d"})

    assert finetune(300)["f"] == 300 and len(commands) == 1
    assert finetune(300)["f"] == 300 and len(commands) == 1  # reused
    assert finetune(200)["f"] == 200 and len(commands) == 2  # another budget: redone
    budget = {"pretrain_steps": 300, "pretrain_batch_size": 16, "seq_len": 128, "finetune_steps": 200, "seeds": [0]}
    row = {"f": {"mean": 0.5, "std": None, "min": 0.5, "max": 0.5, "n": 1}}
    table = bench.tables({"datasets": {"wnut17": {"budget": budget, "arms": {"none": row}}}})
    assert "pretraining 300 steps x 16 x 128 pieces, 200 fine-tuning steps, seeds 0" in table
    assert "| none | 50.00 |" in table


def test_pretrain_benchmark_redoes_a_pretraining_run_made_with_another_budget(tmp_path, monkeypatch):
    """A finished pretraining run is reused for the same budget; for another
    it is redone from scratch (its checkpoint removed, which the CLI would
    otherwise refuse to resume with other settings)."""
    import srsly

    bench = _pretrain_benchmark()
    (tmp_path / "data" / "wnut17").mkdir(parents=True)
    calls = []

    def fake_run(command, log):
        out = Path(command[6])
        calls.append((int(command[command.index("--max-steps") + 1]), (out / "checkpoint").exists()))
        (out / "checkpoint").mkdir(parents=True, exist_ok=True)
        settings = {
            "max_steps": int(command[command.index("--max-steps") + 1]),
            "batch_size": int(command[command.index("--batch-size") + 1]),
            "seq_len": int(command[command.index("--seq-len") + 1]),
            "lr": float(command[command.index("--lr") + 1]),
            "masking": command[command.index("--masking") + 1],
        }
        srsly.write_json(out / "pretrain_meta.json", {"settings": settings, "steps": settings["max_steps"]})
        return 1.0

    monkeypatch.setattr(bench, "run", fake_run)

    def pretrain(steps):
        args = _pretrain_benchmark_args(bench, tmp_path, "--pretrain-steps", str(steps))
        return bench.pretrain_arm(args, "wnut17", "span", tmp_path / "train.spacy")

    assert pretrain(10)["steps"] == 10 and calls == [(10, False)]
    assert pretrain(10)["steps"] == 10 and len(calls) == 1  # reused
    assert pretrain(20)["steps"] == 20 and calls[-1] == (20, False)  # redone, without the old checkpoint
