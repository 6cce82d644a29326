"""The squad format of `python -m spacy_spanbert.convert`: one doc per
paragraph, questions in doc._.questions, gold answers in a span group."""

import codecs
import gzip
import json
import re

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_spanbert.commands.convert import QA_SPANS_KEY, ConversionError, main, read_squad

CONTEXT = "Angela Merkel met Emmanuel Macron in Berlin. They spoke about the film."


def squad(qas, context=CONTEXT, version="v2.0"):
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def write(tmp_path, data, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf8")
    return path


QAS = [
    {
        "id": "q1",
        "question": "Who met Macron?",
        "is_impossible": False,
        "answers": [{"text": "Angela Merkel", "answer_start": 0}],
    },
    {
        "id": "q2",
        "question": "Where did they meet?",
        "is_impossible": False,
        "answers": [{"text": "Berlin", "answer_start": 37}, {"text": "in Berlin", "answer_start": 34}],
    },
    {
        "id": "q3",
        "question": "Who directed the film?",
        "is_impossible": True,
        "answers": [],
        "plausible_answers": [{"text": "Macron", "answer_start": 27}],
    },
]


def test_convert_squad_reads_questions_and_answers(tmp_path):
    docs, stats = read_squad(write(tmp_path, squad(QAS)), "en")
    assert len(docs) == 1
    doc = docs[0]
    assert doc.text == CONTEXT
    assert doc._.questions == {"q1": "Who met Macron?", "q2": "Where did they meet?", "q3": "Who directed the film?"}
    group = doc.spans[QA_SPANS_KEY]
    assert [(span.label_, span.text) for span in group] == [
        ("q1", "Angela Merkel"),
        ("q2", "Berlin"),
        ("q2", "in Berlin"),
    ]
    assert group.attrs["texts"] == ["Angela Merkel", "Berlin", "in Berlin"]
    assert stats == (3, 1, 3, 0)


def test_convert_squad_reads_squad_1_1(tmp_path):
    qas = [{"id": "a", "question": "Who met Macron?", "answers": [{"text": "Merkel", "answer_start": 7}]}]
    docs, stats = read_squad(write(tmp_path, squad(qas, version="1.1")), "en")
    assert [(s.label_, s.text) for s in docs[0].spans[QA_SPANS_KEY]] == [("a", "Merkel")]
    assert stats.unanswerable == 0


def test_convert_squad_expands_answers_to_tokens(tmp_path):
    qas = [{"id": "part", "question": "Where?", "answers": [{"text": "erlin", "answer_start": 38}]}]
    docs, stats = read_squad(write(tmp_path, squad(qas)), "en")
    assert docs[0].spans[QA_SPANS_KEY][0].text == "Berlin"
    assert docs[0].spans[QA_SPANS_KEY].attrs["texts"] == ["erlin"]
    assert stats.expanded == 1


def test_convert_squad_names_the_question_of_a_misplaced_answer(tmp_path):
    qas = [{"id": "bad-id", "question": "Where?", "answers": [{"text": "Berlin", "answer_start": 3}]}]
    with pytest.raises(
        ConversionError, match="question 'bad-id': answer 'Berlin' does not match the context at its answer_start 3"
    ):
        read_squad(write(tmp_path, squad(qas)), "en")


@pytest.mark.parametrize(
    "qa,message",
    [
        ({"id": "e", "question": "  ", "answers": []}, "question 'e': empty or missing 'question' text"),
        ({"question": "Who?", "answers": []}, "a question without a string 'id'"),
        ({"id": "n", "question": "Who?", "answers": [{"text": "Merkel"}]}, "question 'n': an answer needs"),
    ],
)
def test_convert_squad_rejects_malformed_questions(tmp_path, qa, message):
    with pytest.raises(ConversionError, match=message):
        read_squad(write(tmp_path, squad([qa])), "en")


def test_convert_squad_rejects_other_json(tmp_path):
    with pytest.raises(ConversionError, match="expected SQuAD JSON"):
        read_squad(write(tmp_path, [{"context": "x"}]), "en")


def test_convert_squad_limit_keeps_the_first_paragraphs(tmp_path):
    data = squad(QAS)
    data["data"][0]["paragraphs"].append({"context": "Another one.", "qas": []})
    docs, _ = read_squad(write(tmp_path, data), "en", limit=1)
    assert [doc.text for doc in docs] == [CONTEXT]


def test_convert_squad_cli_keeps_questions_in_the_docbin(tmp_path, capsys):
    out = tmp_path / "out.spacy"
    assert main(["squad", str(write(tmp_path, squad(QAS))), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Questions: 3 (1 unanswerable); answers: 3, 0 of them expanded" in printed
    nlp = spacy.blank("en")
    doc = next(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert doc._.questions["q2"] == "Where did they meet?"
    assert [span.label_ for span in doc.spans[QA_SPANS_KEY]] == ["q1", "q2", "q2"]


def test_convert_squad_cli_reports_the_question_id(tmp_path, capsys):
    qas = [{"id": "x7", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 0}]}]
    assert main(["squad", str(write(tmp_path, squad(qas))), str(tmp_path / "o.spacy")]) == 1
    assert "question 'x7'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name,encode",
    [
        ("bom.json", lambda text: codecs.BOM_UTF8 + text.encode("utf-8")),
        ("crlf.json", lambda text: text.replace("\n", "\r\n").encode("utf-8")),
        ("in.json.gz", lambda text: gzip.compress(text.encode("utf-8"))),
    ],
)
def test_convert_squad_reads_bom_crlf_and_gzip(tmp_path, name, encode):
    path = tmp_path / name
    path.write_bytes(encode(json.dumps(squad(QAS), indent=2)))
    docs, stats = read_squad(path, "en")
    assert [doc.text for doc in docs] == [CONTEXT]
    assert [(s.label_, s.text) for s in docs[0].spans[QA_SPANS_KEY]] == [
        ("q1", "Angela Merkel"),
        ("q2", "Berlin"),
        ("q2", "in Berlin"),
    ]
    assert stats == (3, 1, 3, 0)


def test_convert_squad_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "data": [\n    {"paragraphs": [}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(ConversionError, match=re.escape(f"{path}:3: not JSON (")):
        read_squad(path, "en")


def test_convert_squad_answer_must_be_an_object(tmp_path):
    qas = [{"id": "s", "question": "Who?", "answers": ["Merkel"]}]
    with pytest.raises(ConversionError, match="question 's': an answer needs a non-empty 'text'"):
        read_squad(write(tmp_path, squad(qas)), "en")
