"""learn_rate_scale: each component trains its own weights at a multiple of
the optimizer's learning rate; the transformer keeps the optimizer's rate."""

import numpy
import pytest
import spacy
from conftest import make_nlp, qa_step_deltas
from spacy.training import Example
from thinc.api import SGD, fix_random_seed

import spacy_spanbert  # noqa: F401

TEXTS = ["Angela Merkel met Emmanuel Macron in Berlin .", "The film was good ."]
COMPONENTS = ["spanbert", "spanbert_ner", "spanbert_textcat", "spanbert_textcat_multilabel", "spanbert_qa"]


def _pipeline(tiny_bert, scales):
    """transformer + spanbert + spanbert_ner + spanbert_textcat, initialized
    with the same seed whatever the scales."""
    nlp = make_nlp(tiny_bert, {"learn_rate_scale": scales.get("spanbert", 1.0)})
    ner = nlp.add_pipe("spanbert_ner", config={"learn_rate_scale": scales.get("spanbert_ner", 1.0)})
    ner.add_label("PER")
    textcat = nlp.add_pipe("spanbert_textcat", config={"learn_rate_scale": scales.get("spanbert_textcat", 1.0)})
    textcat.add_label("POS")
    textcat.add_label("NEG")
    examples = [
        Example.from_dict(nlp.make_doc(TEXTS[0]), {"entities": [(0, 13, "PER")], "cats": {"POS": 1.0, "NEG": 0.0}}),
        Example.from_dict(nlp.make_doc(TEXTS[1]), {"entities": [], "cats": {"POS": 0.0, "NEG": 1.0}}),
    ]
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    return nlp, examples


def _weights(nlp):
    """Every weight of every component, keyed by (component, parameter)."""
    found = {}
    for name, proc in nlp.pipeline:
        for i, node in enumerate(proc.model.walk()):
            for param in node.param_names:
                if node.has_param(param):
                    found[(name, f"{i}.{node.name}.{param}")] = node.get_param(param).copy()
            for shim in node.shims:
                model = getattr(shim, "_model", None)
                if model is not None:
                    for key, value in model.state_dict().items():
                        found[(name, f"{i}.shim.{key}")] = value.detach().numpy().copy()
    return found


def _deltas(tiny_bert, scales):
    """Per component, the size of one plain-SGD update of its weights."""
    nlp, examples = _pipeline(tiny_bert, scales)
    before = _weights(nlp)
    sgd = SGD(0.01)
    fix_random_seed(1)
    nlp.update(examples, sgd=sgd, drop=0.0)
    # spaCy calls each component's finish_update right after its update,
    # before the heads backpropagate into the components they listen to, so
    # the transformer's and spanbert's gradients of this step are applied on
    # the next one: apply them now.
    for name in ("transformer", "spanbert"):
        nlp.get_pipe(name).finish_update(sgd)
    after = _weights(nlp)
    totals = {}
    for key, value in before.items():
        change = float(numpy.abs(after[key] - value).sum())
        totals[key[0]] = totals.get(key[0], 0.0) + change
    return totals


def test_learn_rate_scale_multiplies_own_updates_only(tiny_bert):
    base = _deltas(tiny_bert, {})
    scaled = _deltas(tiny_bert, {"spanbert": 3.0, "spanbert_ner": 5.0, "spanbert_textcat": 2.0})
    for name in ("transformer", "spanbert", "spanbert_ner", "spanbert_textcat"):
        assert base[name] > 0.0, name
    # With plain SGD one step is exactly proportional to the learning rate;
    # the gradients are the same because the weights start the same.
    assert scaled["spanbert"] == pytest.approx(3.0 * base["spanbert"], rel=1e-4)
    assert scaled["spanbert_ner"] == pytest.approx(5.0 * base["spanbert_ner"], rel=1e-4)
    assert scaled["spanbert_textcat"] == pytest.approx(2.0 * base["spanbert_textcat"], rel=1e-4)
    assert scaled["transformer"] == pytest.approx(base["transformer"], rel=1e-4)


@pytest.mark.parametrize("factory", COMPONENTS)
@pytest.mark.parametrize("value", [0, -1.0, -0.5])
def test_learn_rate_scale_bad_values(tiny_bert, factory, value):
    match = rf"{factory}: learn_rate_scale must be a positive number"
    if factory == "spanbert":
        with pytest.raises(ValueError, match=match):
            make_nlp(tiny_bert, {"learn_rate_scale": value})
    else:
        nlp = make_nlp(tiny_bert)
        with pytest.raises(ValueError, match=match):
            nlp.add_pipe(factory, config={"learn_rate_scale": value})


def test_learn_rate_scale_survives_serialization(tiny_bert):
    nlp, _ = _pipeline(tiny_bert, {"spanbert": 4.0, "spanbert_ner": 6.0, "spanbert_textcat": 7.0})
    for name, value in (("spanbert", 4.0), ("spanbert_ner", 6.0), ("spanbert_textcat", 7.0)):
        assert nlp.get_pipe(name).cfg["learn_rate_scale"] == value
        assert nlp.config["components"][name]["learn_rate_scale"] == value


def _qa_deltas(tiny_bert, learn_rate_scale):
    """spanbert_qa owns its encoder: the size of one plain-SGD update of the
    encoder's and of the answer heads' weights, from the same start."""
    nlp = spacy.blank("en")
    config = {"model": {"name": tiny_bert, "dropout": 0.0}, "max_length": 64, "stride": 16}
    qa = nlp.add_pipe("spanbert_qa", config={**config, "learn_rate_scale": learn_rate_scale})
    ref = nlp.make_doc(TEXTS[0])
    ref._.questions = {"q1": "who met macron", "q2": "what film was good"}
    ref.spans["spanbert_qa"] = [ref.char_span(0, 13, label="q1")]
    deltas = qa_step_deltas(nlp, [Example(nlp.make_doc(TEXTS[0]), ref)])
    assert qa.cfg["learn_rate_scale"] == learn_rate_scale
    assert nlp.config["components"]["spanbert_qa"]["learn_rate_scale"] == learn_rate_scale
    return deltas


def test_learn_rate_scale_multiplies_qa_encoder_and_heads(tiny_bert):
    base = _qa_deltas(tiny_bert, 1.0)
    scaled = _qa_deltas(tiny_bert, 3.0)
    assert base["encoder"] > 0.0 and base["heads"] > 0.0
    # both parts of the component, on top of the heads' own head_lr_scale
    assert scaled["encoder"] == pytest.approx(3.0 * base["encoder"], rel=1e-4)
    assert scaled["heads"] == pytest.approx(3.0 * base["heads"], rel=1e-4)
