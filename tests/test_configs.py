"""Every shipped config loads, validates and trains for a few steps with
`spacy train` (the tiny test BERT stands in for SpanBERT), so none can go stale."""

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.util import load_config

import spacy_spanbert  # noqa: F401

CONFIGS = Path(__file__).parent.parent / "configs"
NAMES = ["ner", "nested_ner", "textcat", "textcat_multilabel", "ner_textcat", "rel", "coref"]

# (text, flat entities, nested spans, topic)
ROWS = [
    (
        "angela merkel met emmanuel macron in berlin .",
        [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")],
        [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")],
        "POLITICS",
    ),
    (
        "the president of france visited london .",
        [(0, 4, "PER"), (5, 6, "LOC")],
        [(0, 4, "PER"), (3, 4, "LOC"), (5, 6, "LOC")],
        "POLITICS",
    ),
    ("apple is a company in new york .", [(0, 1, "ORG"), (5, 7, "LOC")], [(0, 1, "ORG"), (5, 7, "LOC")], "BUSINESS"),
    ("google sold a product in paris .", [(0, 1, "ORG"), (5, 6, "LOC")], [(0, 1, "ORG"), (5, 6, "LOC")], "BUSINESS"),
]


# relations of ROWS, by text: (head, tail, label) token offsets
RELATIONS = {
    "angela merkel met emmanuel macron in berlin .": [((0, 2), (3, 5), "MET"), ((3, 5), (6, 7), "IN")],
    "apple is a company in new york .": [((0, 1), (5, 7), "IN")],
    "google sold a product in paris .": [((0, 1), (5, 6), "IN")],
}


def write_corpus(path: Path) -> Path:
    from spacy_spanbert.rel import ensure_relations_extension

    ensure_relations_extension()
    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    for text, ents, nested, topic in ROWS:
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        doc.spans["spanbert_ner"] = [Span(doc, s, e, label=label) for s, e, label in nested]
        doc.cats = {"POLITICS": float(topic == "POLITICS"), "BUSINESS": float(topic == "BUSINESS")}
        for i, (start, end, _) in enumerate(ents, 1):  # coreference: each entity its own cluster
            doc.spans[f"coref_clusters_{i}"] = [Span(doc, start, end)]
        doc._.relations = [
            {"head": list(h), "tail": list(t), "label": label, "score": 1.0} for h, t, label in RELATIONS.get(text, [])
        ]
        db.add(doc)
    db.to_disk(path)
    return path


def tiny_overrides(tiny_bert: str, corpus: Path) -> dict:
    return {
        "paths.train": str(corpus),
        "paths.dev": str(corpus),
        "components.transformer.model.name": tiny_bert,
        "components.transformer.model.tokenizer_config.do_lower_case": True,
        "components.transformer.model.get_spans.window": 32,
        "components.transformer.model.get_spans.stride": 24,
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.optimizer.learn_rate.total_steps": 4,
        "training.optimizer.learn_rate.initial_rate": 0.001,
    }


@pytest.mark.parametrize("name", NAMES)
def test_config_is_valid_and_uses_spanbert_cased(name):
    config = load_config(CONFIGS / f"{name}.cfg")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names[:2] == ["transformer", "spanbert"]
    model = config["components"]["transformer"]["model"]
    assert model["name"] == "SpanBERT/spanbert-base-cased"
    # The SpanBERT checkpoints ship no tokenizer config: casing must be explicit.
    assert model["tokenizer_config"]["do_lower_case"] is False
    weights = config["training"]["score_weights"]
    assert sum(w for w in weights.values() if w) == pytest.approx(1.0)


@pytest.mark.parametrize("name", NAMES)
def test_config_trains_and_loads(name, tiny_bert, tmp_path):
    from spacy.cli.train import train

    corpus = write_corpus(tmp_path / "corpus.spacy")
    output = tmp_path / "output"
    train(CONFIGS / f"{name}.cfg", output, overrides=tiny_overrides(tiny_bert, corpus))
    nlp = spacy.load(output / "model-last")
    doc = nlp("angela merkel visited paris .")
    assert "spanbert" in doc.spans and len(doc.spans["spanbert"]) > 0
    if "spanbert_ner" in nlp.pipe_names:
        assert set(nlp.get_pipe("spanbert_ner").labels) == {"PER", "LOC", "ORG"}
        assert "spanbert_ner" in doc.spans
    if "spanbert_coref" in nlp.pipe_names:
        assert "spanbert_mentions" in doc.spans
    if "spanbert_rel" in nlp.pipe_names:
        assert set(nlp.get_pipe("spanbert_rel").labels) == {"MET", "IN"}
        assert isinstance(doc._.relations, list)
    for textcat in ("textcat", "textcat_multilabel"):
        if textcat in nlp.pipe_names:
            assert set(doc.cats) == {"POLITICS", "BUSINESS"}
            evidence = doc.spans[f"{textcat}_evidence"]
            assert {span.label_ for span in evidence} == {"POLITICS", "BUSINESS"}
            assert len(evidence.attrs["weights"]) == len(evidence)
    meta = json.loads((output / "model-last" / "meta.json").read_text())
    assert meta["performance"], "spacy train recorded no dev scores"


def test_config_tok2vec_ner_trains_without_a_transformer(tmp_path):
    """The CPU-only config: spaCy's tok2vec feeds spanbert through a
    Tok2VecListener; no transformer, nothing downloaded."""
    from spacy.cli.train import train

    corpus = write_corpus(tmp_path / "corpus.spacy")
    output = tmp_path / "output"
    overrides = {
        "paths.train": str(corpus),
        "paths.dev": str(corpus),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
    }
    train(CONFIGS / "tok2vec_ner.cfg", output, overrides=overrides)
    nlp = spacy.load(output / "model-last")
    assert nlp.pipe_names == ["tok2vec", "spanbert", "spanbert_ner"]
    doc = nlp("angela merkel visited paris .")
    assert len(doc.spans["spanbert"]) > 0 and "spanbert_ner" in doc.spans


def test_tok2vec_before_spanbert_with_a_transformer_listener_names_the_fix():
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    nlp.add_pipe("spanbert")
    with pytest.raises(ValueError, match=r"has a 'tok2vec' component \('tok2vec'\).*spacy.Tok2VecListener.v1"):
        nlp.initialize()


def test_config_unknown_transformer_name_fails_early_with_the_fix(tmp_path, monkeypatch):
    """Offline, a hub name that is not cached stops `initialize` before the
    transformer tries to load it, naming the component and the fix."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = load_config(CONFIGS / "ner.cfg")
    config["components"]["transformer"]["model"]["name"] = "no-such-org/no-such-model"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    with pytest.raises(
        ValueError,
        match=r"\[components.transformer\]: the transformer 'no-such-org/no-such-model'.*HF_HUB_OFFLINE.*get_model_path",
    ):
        nlp.initialize(lambda: [])


def test_config_local_transformer_folder_passes_the_name_check(tiny_bert):
    from spacy_spanbert.callbacks import check_transformer_names

    config = load_config(CONFIGS / "ner.cfg")
    config["components"]["transformer"]["model"]["name"] = tiny_bert
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert check_transformer_names(nlp) is nlp
