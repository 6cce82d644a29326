"""benchmarks/accuracy.py rel and its `pairs` baseline (benchmarks/rel_baseline.py):
valid configs on one budget, the baseline's layers and records, the
gold-entity evaluation, and one tiny end-to-end run."""

import sys
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import DocBin, Span
from spacy.training import Corpus, Example
from thinc.api import chain, reduce_mean

import spacy_spanbert  # noqa: F401
from spacy_spanbert.commands.convert.spert import read_spert

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import accuracy  # noqa: E402
import rel_baseline  # noqa: E402

# SpERT items: tokens, entities (exclusive ends), relations between entity indices
SPERT = [
    {
        "tokens": "angela merkel met emmanuel macron in berlin .".split(),
        "entities": [
            {"type": "Peop", "start": 0, "end": 2},
            {"type": "Peop", "start": 3, "end": 5},
            {"type": "Loc", "start": 6, "end": 7},
        ],
        "relations": [{"type": "Live_In", "head": 0, "tail": 2}, {"type": "Kill", "head": 1, "tail": 0}],
    },
    {
        "tokens": "apple is a company in new york .".split(),
        "entities": [{"type": "Org", "start": 0, "end": 1}, {"type": "Loc", "start": 5, "end": 7}],
        "relations": [{"type": "OrgBased_In", "head": 0, "tail": 1}],
    },
    {
        "tokens": "the german chancellor visited paris .".split(),
        "entities": [{"type": "Peop", "start": 2, "end": 3}, {"type": "Loc", "start": 4, "end": 5}],
        "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
    },
]
REPORT = ["rel_micro_f", "rel_micro_p", "rel_micro_r", "rel_boundaries_f", "rel_macro_f", "ents_f"]


def _write_spert(tmp_path, name="data", items=SPERT):
    """The items as a .spacy file, through the package's spert converter."""
    source = tmp_path / f"{name}.json"
    srsly.write_json(source, items)
    path = tmp_path / f"{name}.spacy"
    DocBin(docs=read_spert(source), store_user_data=True).to_disk(path)
    return path


def _argv(data, encoder, output, *options):
    return ["rel", "--train", str(data), "--dev", str(data), "--encoder", encoder, "--output", str(output), *options]


def _examples(nlp, path):
    return list(Corpus(str(path))(nlp))


def _pairs_nlp(tiny_bert, examples=None, **config):
    """transformer -> rel_pairs_baseline, initialized on `examples`."""
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": tiny_bert}})
    nlp.add_pipe(rel_baseline.FACTORY, config=config)
    if examples is not None:
        nlp.initialize(lambda: examples)
    return nlp


@pytest.mark.parametrize("system", ["spanbert", "pairs"])
def test_benchmarks_rel_configs_are_valid_and_share_the_budget(system, tmp_path, tiny_bert):
    data = _write_spert(tmp_path)
    args = accuracy.parse_args(_argv(data, tiny_bert, tmp_path / "out", "--steps", "50"))
    assert args.systems == ["spanbert", "pairs"]
    config = accuracy.build_config("rel", system, args, tmp_path / "curve.jsonl")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    expected = {
        "spanbert": ["transformer", "spanbert", "spanbert_ner", "spanbert_rel"],
        "pairs": ["transformer", "ner", "rel_pairs"],
    }
    assert nlp.pipe_names == expected[system]
    training = config["training"]
    assert training["max_steps"] == 50 and training["optimizer"]["learn_rate"]["total_steps"] == 50
    assert training["optimizer"]["learn_rate"]["initial_rate"] == 1e-4
    assert training["batcher"]["size"] == 1000 and training["patience"] == 0 and training["eval_frequency"] == 5
    assert config["components"]["transformer"]["model"]["name"] == tiny_bert
    # checkpoints chosen by rel.cfg's weights, for both systems
    assert {k: v for k, v in training["score_weights"].items() if v} == {"rel_micro_f": 0.7, "ents_f": 0.3}
    if system == "pairs":
        rel_cfg = spacy.util.load_config(accuracy.CONFIGS / "rel.cfg")["components"]["spanbert_rel"]
        pairs = config["components"]["rel_pairs"]
        assert pairs["max_distance"] == rel_cfg["max_distance"] == 64
        assert pairs["max_pairs"] == rel_cfg["max_pairs"] and pairs["threshold"] == rel_cfg["threshold"]
        assert config["components"]["ner"] == accuracy.baseline_component("ner", 0)
        assert nlp.get_pipe("rel_pairs").scorer is spacy_spanbert.rel.score_relations


def test_benchmarks_rel_systems_belong_to_their_task(tmp_path, tiny_bert):
    data = _write_spert(tmp_path)
    with pytest.raises(SystemExit):
        accuracy.parse_args(_argv(data, tiny_bert, tmp_path / "out", "--systems", "spacy"))
    ner = ["ner", "--train", str(data), "--dev", str(data), "--encoder", tiny_bert, "--output", str(tmp_path)]
    with pytest.raises(SystemExit):
        accuracy.parse_args(ner + ["--systems", "pairs"])
    assert accuracy.parse_args(ner).systems == ["spanbert", "spacy"]


def test_benchmarks_rel_rejects_training_data_without_relations(tmp_path, tiny_bert, capsys):
    items = [{**item, "relations": []} for item in SPERT]
    data = _write_spert(tmp_path, items=items)
    with pytest.raises(SystemExit):
        accuracy.parse_args(_argv(data, tiny_bert, tmp_path / "out"))
    assert "none of the 3 docs of --train" in capsys.readouterr().err


def test_benchmarks_rel_entity_pooling_forward_and_backward():
    """Pair rows are [mean of the head's token vectors; mean of the tail's];
    the gradient of each token is its share of every argument it is in."""
    layers = chain(rel_baseline.entity_tokens(), reduce_mean(), rel_baseline.pair_concat())
    layers.layers[-1].set_dim("nI", 3)
    tokvecs = [numpy.arange(12, dtype="f").reshape((4, 3)), numpy.zeros((0, 3), "f"), numpy.ones((3, 3), "f")]
    pairs = [
        numpy.asarray([[0, 2, 3, 4], [3, 4, 0, 2]], "int32"),
        numpy.zeros((0, 4), "int32"),
        numpy.asarray([[0, 1, 1, 3]], "int32"),
    ]
    Y, backprop = layers.begin_update((tokvecs, pairs))
    assert Y.shape == (3, 6)
    numpy.testing.assert_allclose(Y[0], [1.5, 2.5, 3.5, 9, 10, 11])
    numpy.testing.assert_allclose(Y[1], [9, 10, 11, 1.5, 2.5, 3.5])
    numpy.testing.assert_allclose(Y[2], numpy.ones(6))
    d_tokvecs, d_pairs = backprop(numpy.ones((3, 6), "f"))
    assert d_pairs is pairs
    assert [d.shape for d in d_tokvecs] == [(4, 3), (0, 3), (3, 3)]
    # tokens 0-1: half of the head of pair 0 and half of the tail of pair 1
    numpy.testing.assert_allclose(d_tokvecs[0][:, 0], [1.0, 1.0, 0.0, 2.0])
    numpy.testing.assert_allclose(d_tokvecs[2][:, 0], [1.0, 0.5, 0.5])


def test_benchmarks_rel_baseline_model_shapes_and_gradient(tmp_path, tiny_bert):
    nlp = spacy.blank("en")
    examples = _examples(nlp, _write_spert(tmp_path))
    nlp = _pairs_nlp(tiny_bert, examples)
    rel = nlp.get_pipe(rel_baseline.FACTORY)
    assert rel.labels == ("Kill", "Live_In", "OrgBased_In")
    docs = [nlp.get_pipe("transformer")(nlp.make_doc(eg.reference.text)) for eg in examples]
    pairs = [rel.training_rows(eg) for eg in examples]
    # every ordered pair of gold entities: 3 x 2, 2 x 1, 2 x 1
    assert [len(p) for p in pairs] == [6, 2, 2]
    logits = rel.model.predict((docs, pairs))
    assert logits.shape == (10, 3)
    probs = 1 / (1 + numpy.exp(-logits))
    loss, gradient = rel.get_loss(examples, (pairs, logits))
    assert gradient.shape == (10, 3)
    # (merkel, berlin) holds Live_In (column 1) and not Kill (column 0): the
    # cross-entropy gradient of a logit is sigmoid(logit) - truth
    row = pairs[0].tolist().index([0, 2, 6, 7])
    assert gradient[row, 1] == pytest.approx(probs[row, 1] - 1.0, abs=1e-6)
    assert gradient[row, 0] == pytest.approx(probs[row, 0], abs=1e-6)
    # the targets behind the gradient are 0/1, and the loss is their summed cross-entropy
    truth = numpy.round(probs - gradient)
    assert set(numpy.unique(truth).tolist()) == {0.0, 1.0}
    expected = -(truth * numpy.log(probs) + (1 - truth) * numpy.log(1 - probs)).sum()
    assert loss == pytest.approx(float(expected), rel=1e-4)


def test_benchmarks_rel_baseline_writes_relation_records(tmp_path, tiny_bert):
    nlp = spacy.blank("en")
    path = _write_spert(tmp_path)
    examples = _examples(nlp, path)
    nlp = _pairs_nlp(tiny_bert, examples, threshold=0.0, max_distance=1)
    doc = nlp.make_doc("angela merkel met emmanuel macron in berlin .")
    doc.ents = [Span(doc, 0, 2, "Peop"), Span(doc, 3, 5, "Peop"), Span(doc, 6, 7, "Loc")]
    doc = nlp(doc)
    # max_distance 1: merkel-macron (1 token between) and macron-berlin, both ways; every label at threshold 0
    pairs = {(tuple(r["head"]), tuple(r["tail"])) for r in doc._.relations}
    assert pairs == {((0, 2), (3, 5)), ((3, 5), (0, 2)), ((3, 5), (6, 7)), ((6, 7), (3, 5))}
    assert len(doc._.relations) == 4 * 3
    record = doc._.relations[0]
    assert set(record) == {"head", "tail", "label", "score"} and isinstance(record["score"], float)
    assert nlp(nlp.make_doc("the film was good ."))._.relations == []
    # an untrained model scores below 1: nothing at threshold 1
    nlp.get_pipe(rel_baseline.FACTORY).cfg["threshold"] = 1.0
    assert nlp(doc)._.relations == []
    scores = nlp.evaluate(examples)
    assert {"rel_micro_f", "rel_boundaries_f", "rel_macro_f", "rel_f_per_type"} <= set(scores)


def test_benchmarks_rel_baseline_update_without_pairs_trains(tmp_path, tiny_bert):
    """A batch without entity pairs still runs the listener (the transformer's
    backprop, which the last listener calls, is consumed); a batch with
    pairs has a loss."""
    from thinc.api import Adam

    nlp = spacy.blank("en")
    examples = _examples(nlp, _write_spert(tmp_path))
    nlp = _pairs_nlp(tiny_bert, examples)
    optimizer = Adam(0.01)
    (listener,) = nlp.get_pipe("transformer").listeners
    text = "the film was good ."
    losses = nlp.update([Example(nlp.make_doc(text), nlp.make_doc(text))], sgd=optimizer)
    assert losses[rel_baseline.FACTORY] == 0.0
    assert listener._batch_id is None and listener._backprop is None
    losses = nlp.update(examples, sgd=optimizer)
    assert losses[rel_baseline.FACTORY] > 0 and listener._backprop is None


def test_benchmarks_rel_gold_entity_evaluation_sets_ents_from_reference(tmp_path, tiny_bert):
    nlp = spacy.blank("en")
    path = _write_spert(tmp_path)
    examples = _examples(nlp, path)
    gold = accuracy.gold_entity_docs(examples, nlp.vocab)
    for eg, new in zip(examples, gold):
        assert [(e.start, e.end, e.label_) for e in new.predicted.ents] == [
            (e.start, e.end, e.label_) for e in eg.reference.ents
        ]
        assert new.predicted.text == eg.reference.text and new.predicted._.relations is None
    # an untrained `ner` would set other entities: disabled, the gold ones reach
    # the relation component, which relates every pair at threshold 0
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": tiny_bert}})
    nlp.add_pipe("ner", config={"model": accuracy.baseline_component("ner", 0)["model"]})
    nlp.add_pipe(rel_baseline.FACTORY, config={"threshold": 0.0})
    nlp.initialize(lambda: examples)
    scores = accuracy.evaluate_gold_entities(nlp, path, 8, "ner")
    assert scores["ents_f"] == 1.0 and scores["rel_micro_r"] == 1.0
    assert "ner" in nlp.pipe_names and not nlp.disabled


def test_benchmarks_rel_command_line_end_to_end(tmp_path, tiny_bert, capsys):
    """`accuracy.py rel`, 4 steps on a tiny random BERT: both systems train and
    results.json has the end-to-end and gold-entity scores of dev and test."""
    data = _write_spert(tmp_path)
    out = tmp_path / "out"
    argv = _argv(data, tiny_bert, out, "--test", str(data), "--steps", "4", "--eval-frequency", "2", "--seed", "1")
    assert accuracy.main(argv) == 0
    results = srsly.read_json(out / "results.json")
    assert results["task"] == "rel" and results["budget"]["steps"] == 4 and results["budget"]["seed"] == 1
    assert results["budget"]["selection"].endswith("0.7 rel_micro_f + 0.3 ents_f (both systems)")
    assert set(results["systems"]) == {"spanbert", "pairs"}
    for name, system in results["systems"].items():
        for split in ("dev", "dev_gold_entities", "test", "test_gold_entities"):
            missing = [key for key in REPORT if key not in system[split]]
            assert not missing, (name, split, missing)
        assert system["dev_gold_entities"]["ents_f"] == 1.0
        assert system["train_seconds"] > 0 and system["words_per_second"] > 0 and system["curve"]
    printed = capsys.readouterr().out
    assert "| dev | predicted | spanbert - pairs |" in printed and "| test | gold | spanbert - pairs |" in printed
