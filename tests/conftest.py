"""Shared fixtures. Nothing here downloads: the transformer is a tiny random
BERT written to a temporary folder, with a vocabulary made on the fly."""

import os
import string
import sys
from pathlib import Path

import pytest
import spacy

# The project's own scripts (the demo) are importable by the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = """the a an of in on at to and or is was were be by for with from as it he she
they we you i his her their this that who what when where why how which city
met visited said told german french chancellor president angela merkel emmanuel
macron berlin paris london new york apple google book film song band river
company product city country people person man woman good bad happy sad""".split()


def write_tiny_bert(path) -> str:
    """Save a randomly initialised 2-layer BERT (hidden size 32) and a
    WordPiece vocabulary to `path`. RETURNS (str): the folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(string.ascii_letters + string.digits + string.punctuation))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += WORDS + chars + ["##" + c for c in chars]
    vocab = list(dict.fromkeys(vocab))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    # model_max_length = max_position_embeddings, as in a real BERT checkpoint:
    # spacy-transformers truncates longer windows instead of crashing.
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def make_nlp(tiny_bert: str, spanbert_config=None, transformer=True):
    import spacy_spanbert  # noqa: F401

    nlp = spacy.blank("en")
    if transformer:
        nlp.add_pipe(
            "transformer",
            config={
                "model": {
                    "name": tiny_bert,
                    "get_spans": {
                        "@span_getters": "spacy-transformers.strided_spans.v1",
                        "window": 32,
                        "stride": 24,
                    },
                }
            },
        )
    nlp.add_pipe("spanbert", config=spanbert_config or {})
    return nlp


@pytest.fixture
def nlp_factory(tiny_bert):
    def factory(spanbert_config=None, transformer=True):
        return make_nlp(tiny_bert, spanbert_config, transformer)

    return factory


TEXTS = [
    "Angela Merkel met Emmanuel Macron in Berlin .",
    "The German chancellor visited Paris .",
    "Apple is a company in New York .",
    "He said the film was good .",
]


def round_trip(nlp, how: str, tmp_path):
    """A copy of `nlp` through disk, bytes or pickle."""
    import pickle

    if how == "disk":
        nlp.to_disk(tmp_path / "pipeline")
        return spacy.load(tmp_path / "pipeline")
    if how == "bytes":
        return spacy.util.load_model_from_config(nlp.config).from_bytes(nlp.to_bytes())
    return pickle.loads(pickle.dumps(nlp))
