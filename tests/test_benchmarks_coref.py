"""benchmarks/accuracy.py coref and its `spacy` system (benchmarks/coref_baseline.py):
the head words of the baseline's training data, both configs on one budget,
the scoring of predicted docs, one tiny end-to-end run of the spanbert system
and, where the baseline's virtualenv exists, of both (slow)."""

import os
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin, Span

import spacy_spanbert  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import accuracy  # noqa: E402
import coref_baseline  # noqa: E402

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
    (
        "the band met the president in london . he said they were happy .",
        [[(0, 2), (10, 11)], [(3, 5), (8, 9)], [(6, 7)]],
    ),
]
REPORT = ["coref_f", "coref_muc_f", "coref_b3_f", "coref_ceafe_f", "coref_mention_f"]
BASELINE_PYTHON = Path(os.environ.get("COREF_BASELINE_PYTHON", accuracy.COREF_BASELINE_PYTHON))


def _docs(data=DATA):
    nlp = spacy.blank("en")
    docs = []
    for text, clusters in data:
        doc = nlp.make_doc(text)
        for i, cluster in enumerate(clusters, 1):
            doc.spans[f"coref_clusters_{i}"] = [Span(doc, s, e) for s, e in cluster]
        docs.append(doc)
    return docs


def _write(tmp_path, data=DATA, name="data"):
    path = tmp_path / f"{name}.spacy"
    DocBin(docs=_docs(data)).to_disk(path)
    return path


def _argv(data, encoder, output, *options):
    return ["coref", "--train", str(data), "--dev", str(data), "--encoder", encoder, "--output", str(output), *options]


def _clusters(doc, prefix):
    keys = sorted((k for k in doc.spans if k.startswith(prefix + "_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return [[(s.start, s.end) for s in doc.spans[k]] for k in keys]


def test_head_words_keep_the_shortest_mention_ending_on_a_token():
    clusters = [
        [(0, 3), (1, 3), (5, 6)],  # (0, 3) ends on the token of the shorter (1, 3): dropped
        [(2, 3), (7, 9)],  # (1, 3) too, for the shorter (2, 3) of another cluster
        [(4, 4)],  # empty: dropped, and its cluster with it
        [(10, 12), (7, 9)],  # a repeat of (7, 9), in another cluster
        [(11, 12)],  # the shorter of (10, 12)
    ]
    kept, heads, dropped = coref_baseline.head_word_clusters(clusters)
    assert kept == [[(5, 6)], [(2, 3), (7, 9)], [(11, 12)]]
    assert heads == [[5], [2, 8], [11]]
    # (cluster, mention, cluster of the mention that keeps the word)
    assert dropped == [(0, (0, 3), 1), (0, (1, 3), 1), (2, (4, 4), None), (3, (10, 12), 4), (3, (7, 9), 1)]
    assert coref_baseline.head_word_clusters([]) == ([], [], [])


def test_coref_baseline_prepare_writes_parallel_head_clusters(tmp_path):
    # "the german chancellor" and "chancellor" (another cluster here) end on the same token
    data = [(DATA[1][0], [[(0, 3), (6, 7)], [(2, 3)], [(4, 5), (10, 11)], [(8, 10)]])]
    counts = coref_baseline.prepare(_write(tmp_path, data), tmp_path / "heads.spacy")
    assert counts == {"docs": 1, "clusters": 4, "mentions": 6, "kept": 5, "dropped": 1, "dropped_other_cluster": 1}
    (doc,) = DocBin().from_disk(tmp_path / "heads.spacy").get_docs(spacy.blank("en").vocab)
    assert _clusters(doc, "coref_clusters") == [[(6, 7)], [(2, 3)], [(4, 5), (10, 11)], [(8, 10)]]
    assert _clusters(doc, "coref_head_clusters") == [[(6, 7)], [(2, 3)], [(4, 5), (10, 11)], [(9, 10)]]
    # each cluster's head group right after it: the order both components read them in
    assert list(doc.spans)[:2] == ["coref_clusters_1", "coref_head_clusters_1"]


def test_coref_configs_share_the_budget(tmp_path, tiny_bert):
    data = _write(tmp_path)
    python = tmp_path / "python"
    python.touch()
    out = tmp_path / "out"
    args = accuracy.parse_args(_argv(data, tiny_bert, out, "--steps", "50", "--baseline-python", str(python)))
    assert args.systems == ["spanbert", "spacy"]
    configs = {name: accuracy.build_config("coref", name, args, out / name / "curve.jsonl") for name in args.systems}
    nlp = spacy.util.load_model_from_config(configs["spanbert"], auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "spanbert", "spanbert_coref"]
    spanbert, baseline = configs["spanbert"], configs["spacy"]
    assert baseline["nlp"]["pipeline"] == ["sentencizer", "transformer", "coref", "span_resolver"]
    assert baseline["components"]["transformer"] == spanbert["components"]["transformer"]
    assert spanbert["components"]["transformer"]["model"]["get_spans"]["window"] == 128
    for name in ("coref", "span_resolver"):
        assert baseline["components"][name]["model"]["tok2vec"] == accuracy.LISTENER
    for section in ("optimizer", "max_steps", "eval_frequency", "patience", "dropout", "seed"):
        assert baseline["training"][section] == spanbert["training"][section], section
    assert baseline["training"]["optimizer"]["learn_rate"]["total_steps"] == 50
    # checkpoints of both chosen by the project's coref_f
    for config in (spanbert, baseline):
        assert {k: v for k, v in config["training"]["score_weights"].items() if v} == {"coref_f": 1.0}
    assert baseline["components"]["coref"]["scorer"] == {"@scorers": "spacy-spanbert.coref_scorer.v1"}
    assert baseline["initialize"]["before_init"] is None
    assert baseline["paths"]["train"] == str(out / "spacy" / "train_heads.spacy")
    assert baseline["corpora"]["train"]["@readers"] == coref_baseline.READER
    assert baseline["corpora"]["train"]["copy_heads"] and not baseline["corpora"]["dev"]["copy_heads"]
    assert baseline["training"]["logger"]["@loggers"] == coref_baseline.LOGGER
    # docs of 14-15 tokens share batches of 1000 words: one doc a batch for the baseline ...
    assert spanbert["training"]["batcher"]["@batchers"] == "spacy.batch_by_padded.v1"
    assert baseline["training"]["batcher"] == {"@batchers": "spacy.batch_by_sequence.v1", "size": 1, "get_length": None}
    # ... and the same batcher as spanbert's where that gives each doc a batch of its own
    args = accuracy.parse_args(_argv(data, tiny_bert, out, "--batch-words", "20", "--baseline-python", str(python)))
    assert accuracy.build_config("coref", "spacy", args, out / "curve.jsonl")["training"]["batcher"]["size"] == 20


def test_coref_options_and_data_are_checked(tmp_path, tiny_bert, capsys):
    data = _write(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        accuracy.parse_args(_argv(data, tiny_bert, out, "--baseline-python", str(tmp_path / "none" / "python")))
    assert "bash scripts/coref_baseline_venv.sh" in capsys.readouterr().err
    assert accuracy.parse_args(_argv(data, tiny_bert, out, "--systems", "spanbert")).systems == ["spanbert"]
    with pytest.raises(SystemExit):
        accuracy.parse_args(["ner"] + _argv(data, tiny_bert, out, "--baseline-python", "python")[1:])
    assert "--baseline-python is for the coref task only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        accuracy.parse_args(_argv(_write(tmp_path, [(DATA[0][0], [])], "empty"), tiny_bert, out))
    assert "none of the 1 docs of --train" in capsys.readouterr().err


def test_coref_split_scores_with_and_without_singletons():
    gold = _docs()
    # the gold clusters, with the singleton clusters left out
    predicted = _docs([(text, [c for c in clusters if len(c) > 1]) for text, clusters in DATA])
    scores = accuracy.coref_split_scores("dev", predicted, gold)
    assert scores["dev_without_singletons"]["coref_f"] == 1.0
    assert scores["dev_without_singletons"]["predicted_clusters"] == 6
    assert scores["dev"]["coref_muc_f"] == 1.0 and scores["dev"]["coref_b3_f"] < 1.0
    assert scores["dev"]["coref_mention_r"] == pytest.approx(12 / 15) and scores["dev"]["predicted_singletons"] == 0
    with pytest.raises(ValueError, match="not those of the gold data"):
        accuracy.coref_split_scores("dev", predicted[::-1], gold)


def test_coref_command_line_spanbert_end_to_end(tmp_path, tiny_bert, capsys):
    """`accuracy.py coref --systems spanbert`, 4 steps on a tiny random BERT:
    results.json has the coreference scores of dev and test, with and without
    singletons."""
    data = _write(tmp_path)
    out = tmp_path / "out"
    argv = _argv(data, tiny_bert, out, "--test", str(data), "--steps", "4", "--eval-frequency", "2")
    assert accuracy.main(argv + ["--systems", "spanbert"]) == 0
    results = srsly.read_json(out / "results.json")
    assert results["task"] == "coref" and results["budget"]["steps"] == 4
    assert results["budget"]["selection"].endswith("by coref_f of the project's scorer (both systems)")
    system = results["systems"]["spanbert"]
    for split in ("dev", "dev_without_singletons", "test", "test_without_singletons"):
        assert not [key for key in REPORT if key not in system[split]], split
    assert system["train_seconds"] > 0 and system["words_per_second"] > 0 and system["curve"]
    assert "coref_f" in system["curve"][-1]["other_scores"]
    assert "| dev | no singletons | spanbert |" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not BASELINE_PYTHON.exists(), reason="no baseline virtualenv (bash scripts/coref_baseline_venv.sh)")
def test_coref_command_line_both_systems_end_to_end(tmp_path, tiny_bert, capsys):
    """Both systems, 4 steps on a tiny random BERT: the baseline trains and
    predicts in its virtualenv and is scored here like spanbert."""
    data = _write(tmp_path)
    out = tmp_path / "out"
    argv = _argv(
        data, tiny_bert, out, "--steps", "4", "--eval-frequency", "2", "--baseline-python", str(BASELINE_PYTHON)
    )
    assert accuracy.main(argv) == 0
    results = srsly.read_json(out / "results.json")
    baseline = results["systems"]["spacy"]
    for split in ("dev", "dev_without_singletons"):
        assert not [key for key in REPORT if key not in baseline[split]], split
    assert baseline["dev"]["predicted_singletons"] == 0
    assert baseline["recipe"]["environment"]["spacy-experimental"] == "0.6.4"
    assert baseline["recipe"]["training_mentions"]["kept"] == 15
    assert baseline["curve"] and "coref_f" in baseline["curve"][-1]["other_scores"]
    assert (out / "spacy" / "dev_predicted.spacy").exists()
    assert "| dev | all | spanbert - spacy |" in capsys.readouterr().out
