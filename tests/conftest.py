"""Shared fixtures. Nothing here downloads: the transformer is a tiny random
BERT written to a temporary folder, with a vocabulary made on the fly."""

import os
import pickle
import string
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import SGD, Adam, fix_random_seed

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
    if how == "disk":
        nlp.to_disk(tmp_path / "pipeline")
        return spacy.load(tmp_path / "pipeline")
    if how == "bytes":
        return spacy.util.load_model_from_config(nlp.config).from_bytes(nlp.to_bytes())
    return pickle.loads(pickle.dumps(nlp))


def train_losses(nlp, examples, *, name: str, n_iter: int, lr: float):
    """Initialize `nlp` on `examples` (seed 0) and train it on them as one
    batch for `n_iter` steps of Adam(lr). RETURNS (List[float]): The loss of
    component `name` at each step."""
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(lr)
    history = []
    for _ in range(n_iter):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses[name])
    return history


def qa_step_deltas(nlp, examples):
    """Initialize `nlp` on `examples` (seed 0) and take one plain-SGD step
    (seed 1). RETURNS (Dict[str, float]): How far the step moved the weights
    of its `spanbert_qa`'s encoder and of its answer heads (the sum of the
    absolute changes), keyed "encoder" and "heads"."""
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    model = nlp.get_pipe("spanbert_qa").model
    parts = {part: model.get_ref(part).shims[0]._model for part in ("encoder", "heads")}
    before = {part: {k: v.clone() for k, v in module.state_dict().items()} for part, module in parts.items()}
    fix_random_seed(1)
    nlp.update(examples, sgd=SGD(0.01))
    return {
        part: sum(float((v - before[part][k]).abs().sum()) for k, v in module.state_dict().items())
        for part, module in parts.items()
    }


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rewrite_envelope(model_file, index: int, count: int, edit) -> None:
    """Apply `edit` to the `index`-th of the `count` torch-state envelopes
    (serialize.py's checksummed weights) among the shims of a saved thinc model."""
    msg = srsly.msgpack_loads(model_file.read_bytes())
    found = []
    for node_shims in msg["shims"]:
        for i, shim_bytes in enumerate(node_shims):
            inner = srsly.msgpack_loads(shim_bytes)
            if isinstance(inner, dict) and "sha256" in inner:
                found.append((node_shims, i, inner))
    assert len(found) == count, f"expected {count} weight envelope(s) in the saved model, found {len(found)}"
    node_shims, i, inner = found[index]
    node_shims[i] = edit(inner)
    model_file.write_bytes(srsly.msgpack_dumps(msg))


def _flip_weights(inner) -> bytes:
    state = bytearray(inner["state"])
    state[-5] ^= 0xFF  # flip a bit pattern inside the last tensor's data
    inner["state"] = bytes(state)
    return srsly.msgpack_dumps(inner)


def check_tampered_weights_rejected(
    nlp, tmp_path, name: str, *, checksum_error: str, format_error: str, index: int = 0, count: int = 1
) -> None:
    """Save `nlp` to tmp_path/pipeline and check that loading it fails with a
    ValueError matching `checksum_error` when a bit pattern of the weights of
    component `name` is flipped, and with one matching `format_error` (and
    without running the pickle) when a pickle stands in for the weights; the
    untouched file still loads.

    index (int): Which of the `count` weight envelopes of the component's
        model file to tamper with.
    """
    pipeline = tmp_path / "pipeline"
    nlp.to_disk(pipeline)
    model_file = pipeline / name / "model"
    original = model_file.read_bytes()

    _rewrite_envelope(model_file, index, count, _flip_weights)
    with pytest.raises(ValueError, match=checksum_error):
        spacy.load(pipeline)

    marker = tmp_path / "pwned"
    model_file.write_bytes(original)
    _rewrite_envelope(model_file, index, count, lambda inner: pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match=format_error):
        spacy.load(pipeline)
    assert not marker.exists(), "loading executed a pickled payload"

    model_file.write_bytes(original)
    assert name in spacy.load(pipeline).pipe_names  # the untouched file still loads


def train_ner_pipeline(tiny_bert: str, rows, *, n_iter: int):
    """A transformer -> spanbert -> spanbert_ner pipeline trained on `rows`
    ((text, [(start, end, label)]) with token offsets) for `n_iter` Adam
    steps, seed 0. RETURNS (Tuple[Language, List[Example]]): It, and the examples."""
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner")
    examples = []
    for text, ents in rows:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples
