"""benchmarks/accuracy.py builds valid configs for both systems of every task
(training itself is a benchmark, not a test)."""
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


@pytest.mark.parametrize("task,system", sorted(EXPECTED))
def test_accuracy_benchmark_configs_are_valid_and_share_the_budget(task, system, tmp_path, tiny_bert):
    data = tmp_path / "data.spacy"
    data.write_bytes(b"")
    args = accuracy.parse_args(
        [task, "--train", str(data), "--dev", str(data), "--encoder", tiny_bert,
         "--output", str(tmp_path / "out"), "--steps", "50"]
    )
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
    results = {"systems": {
        "spanbert": {"dev": {"ents_f": 0.5, "ents_p": 0.6, "ents_r": 0.4}, "train_seconds": 20.0, "words_per_second": 100.0},
        "spacy": {"dev": {"ents_f": 0.4, "ents_p": 0.5, "ents_r": 0.3}, "train_seconds": 10.0, "words_per_second": 200.0},
    }}
    table = accuracy.table("ner", results)
    assert "| spanbert - spacy | +10.00 | +10.00 | +10.00 | x2.00 | x0.50 |" in table


def test_accuracy_settings_change_the_spanbert_system_only(tmp_path, tiny_bert):
    data = tmp_path / "data.spacy"
    data.write_bytes(b"")
    common = ["ner", "--train", str(data), "--dev", str(data), "--encoder", tiny_bert,
              "--output", str(tmp_path / "out"), "--steps", "50"]
    args = accuracy.parse_args(
        common + ["--set", "components.spanbert.model.n_layers=0",
                  "--set", "components.spanbert_ner.threshold=0.25",
                  "--set", "training.max_steps=7"]
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
    assert "has 1 training doc(s) of 10 tokens or more (the longest: 12)" in accuracy.long_docs_warning(path, 30, threshold=10)
    # a folder of .spacy files, as spaCy's corpus reader accepts
    folder = tmp_path / "folder"
    folder.mkdir()
    DocBin(docs=[nlp.make_doc("a " * 40)]).to_disk(folder / "part1.spacy")
    DocBin(docs=[nlp.make_doc("a " * 3)]).to_disk(folder / "part2.spacy")
    assert "has 1 training doc(s) of 10 tokens or more (the longest: 40)" in accuracy.long_docs_warning(folder, 0, threshold=10)


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
