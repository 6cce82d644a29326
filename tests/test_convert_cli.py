"""The converter's engine (`convert`, called without typer or argparse) and
its typer shell `spacy spanbert convert`, which must write what the argparse
shell `python -m spacy_spanbert.convert` writes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.cli._util import app
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_spanbert.commands.convert import (
    ConversionError,
    ConvertResult,
    OptionError,
    convert,
    main,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONLL = "New\tB-LOC\nYork\tI-LOC\n\nhi\tO\n\nPeter\tB-PER\n"
TREC = "DESC:manner How ?\nENTY:cremat What films ?\nHUM:ind Who was it ?\nDESC:def What is a fjord ?\n"
LITBANK = "the\tO\tB-PER\t\nLord\tB-PER\tI-PER\t\n\nof\tO\tO\t\nLondon\tB-GPE\tO\t\n"
PRODIGY = [
    {"text": "I took xanax", "spans": [{"start": 7, "end": 12, "label": "DRUG"}]},
    {"text": "Fix the docs", "label": "DOCS", "answer": "accept"},
]
GOEMOTIONS = "lol, love it\t0,1\tid1\nugh\t2\tid2\n"
LABELS = "admiration\namusement\nanger\n"
SQUAD = {
    "data": [
        {
            "paragraphs": [
                {
                    "context": "Angela Merkel met Emmanuel Macron in Berlin.",
                    "qas": [
                        {"id": "q1", "question": "Who?", "answers": [{"text": "Angela Merkel", "answer_start": 0}]}
                    ],
                }
            ]
        }
    ]
}
INPUTS = {
    "conll": ("in.conll", CONLL),
    "trec": ("train.label", TREC),
    "litbank": ("one.tsv", LITBANK),
    "prodigy": ("in.jsonl", "".join(json.dumps(row) + "\n" for row in PRODIGY)),
    "goemotions": ("train.tsv", GOEMOTIONS),
    "squad": ("in.json", json.dumps(SQUAD)),
}


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def write_input(folder: Path, fmt: str) -> Path:
    name, text = INPUTS[fmt]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read_back(path: Path):
    nlp = spacy.blank("en")
    docs = DocBin(store_user_data=True).from_disk(path).get_docs(nlp.vocab)
    return [
        (
            doc.text,
            [(e.start, e.end, e.label_) for e in doc.ents],
            doc.cats,
            {key: [(s.start, s.end, s.label_) for s in group] for key, group in doc.spans.items()},
            doc.user_data.get(("._.", "questions", None, None)),
        )
        for doc in docs
    ]


def spanbert_convert(runner, *args: str):
    return runner.invoke(app, ["spanbert", "convert", *args])


# ---------------------------------------------------------------------------
# the engine


def test_convert_cli_engine_returns_what_it_wrote(tmp_path):
    path = write_input(tmp_path, "trec")
    train, dev = tmp_path / "out" / "train.spacy", tmp_path / "out" / "dev.spacy"
    result = convert("trec", path, train, fine=True, dev_output=dev, dev_last=1)
    assert isinstance(result, ConvertResult)
    assert [doc.text for doc in result.docs] == ["How ?", "What films ?", "Who was it ?"]
    assert [doc.text for doc in result.dev] == ["What is a fjord ?"]
    assert result.n_dropped == 0
    assert [text for text, *_ in read_back(train)] == [doc.text for doc in result.docs]
    assert read_back(dev)[0][2]["DESC:def"] == 1.0
    assert f"Wrote 3 docs (9 tokens) to {train}" in result.summary
    assert f"Wrote 1 doc (5 tokens) to {dev}" in result.summary


def test_convert_cli_engine_drops_texts_in_another_docbin(tmp_path):
    path = write_input(tmp_path, "conll")
    seen = tmp_path / "seen.spacy"
    convert("conll", path, seen, limit=1)
    result = convert("conll", path, tmp_path / "rest.spacy", drop_texts_in=seen)
    assert [doc.text for doc in result.docs] == ["hi", "Peter"]
    assert result.n_dropped == 1
    assert result.summary.startswith(f"Dropped 1 docs whose text occurs in {seen}\n")


def test_convert_cli_engine_squad_summary_counts_questions(tmp_path):
    result = convert("squad", write_input(tmp_path, "squad"), tmp_path / "qa.spacy")
    assert "Questions: 1 (0 unanswerable); answers: 1, 0 of them expanded" in result.summary
    assert read_back(tmp_path / "qa.spacy")[0][4] == {"q1": "Who?"}


@pytest.mark.parametrize(
    "fmt,options,message",
    [
        ("conll", {"fine": True}, "--fine only applies to the trec format"),
        ("trec", {"n_sents": 2}, "--n-sents only applies to the conll or litbank format"),
        ("prodigy", {"spans_key": "sc"}, "--spans-key only applies to the litbank or squad or spert format"),
        ("conll", {"labels": "labels.txt"}, "--labels only applies to the goemotions format"),
        ("goemotions", {}, "the goemotions format requires --labels FILE"),
        ("conll", {"dev_last": 1}, "--dev-output and --dev-last go together"),
        ("conll", {"lang": "xx-nope"}, "--lang 'xx-nope': "),
        ("conll", {"encoding": "no-such-codec"}, "unknown encoding 'no-such-codec'"),
        ("conllu", {}, "unknown format 'conllu': choose one of conll, conll2012, litbank"),
    ],
)
def test_convert_cli_engine_rejects_options_before_reading(tmp_path, fmt, options, message):
    output = tmp_path / "out.spacy"
    with pytest.raises(OptionError, match=re.escape(message)):
        convert(fmt, tmp_path / "missing.txt", output, **options)
    assert not output.exists()


def test_convert_cli_engine_empty_input(tmp_path):
    path = tmp_path / "empty.conll"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ConversionError, match=re.escape(f"{path}: no documents found")):
        convert("conll", path, tmp_path / "out.spacy")


# ---------------------------------------------------------------------------
# spacy spanbert convert


@pytest.mark.parametrize(
    "fmt,extra",
    [
        ("conll", ["--n-sents", "2"]),
        ("trec", ["--fine", "--limit", "3"]),
        ("litbank", ["--n-sents", "1", "--spans-key", "sc"]),
        ("prodigy", []),
        ("goemotions", ["--labels", "LABELS"]),
        ("squad", ["--spans-key", "answers"]),
    ],
)
def test_convert_cli_typer_writes_what_the_module_entry_writes(tmp_path, runner, capsys, fmt, extra):
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS, encoding="utf-8")
    extra = [str(labels) if arg == "LABELS" else arg for arg in extra]
    path = write_input(tmp_path, fmt)
    by_typer, by_argparse = tmp_path / "typer" / "out.spacy", tmp_path / "argparse" / "out.spacy"
    result = spanbert_convert(runner, fmt, str(path), str(by_typer), *extra)
    assert result.exit_code == 0, result.output
    assert main([fmt, str(path), str(by_argparse), *extra]) == 0
    assert read_back(by_typer) == read_back(by_argparse)
    assert read_back(by_typer)
    printed = capsys.readouterr().out
    assert result.stdout.replace(str(by_typer), str(by_argparse)) == printed


def test_convert_cli_typer_malformed_input_exits_1(tmp_path, runner):
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\n\nb\tX-foo\n", encoding="utf-8")
    output = tmp_path / "out.spacy"
    result = spanbert_convert(runner, "conll", str(path), str(output))
    assert result.exit_code == 1
    assert f"{path}:3: invalid tag 'X-foo'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.parametrize(
    "fmt,extra,message",
    [
        ("conll", ["--fine"], "--fine only applies to the trec format"),
        ("trec", ["--n-sents", "2"], "--n-sents only applies to the conll or litbank format"),
        ("goemotions", [], "the goemotions format requires --labels FILE"),
        ("conll", ["--dev-output", "dev.spacy"], "--dev-output and --dev-last go together"),
        ("conll", ["--limit", "0"], "Invalid value for '--limit'"),
        ("conllu", [], "'conllu' is not one of"),
    ],
)
def test_convert_cli_typer_usage_errors_exit_2(tmp_path, runner, fmt, extra, message):
    path = write_input(tmp_path, "conll")
    output = tmp_path / "out.spacy"
    result = spanbert_convert(runner, fmt, str(path), str(output), *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert not output.exists()


def test_convert_cli_typer_help_lists_the_options(runner):
    result = spanbert_convert(runner, "--help")
    assert result.exit_code == 0
    for option in ("--lang", "--limit", "--encoding", "--n-sents", "--spans-key", "--fine", "--labels"):
        assert option in result.stdout
    for option in ("--dev-output", "--dev-last", "--drop-texts-in"):
        assert option in result.stdout


def test_convert_cli_spacy_spanbert_help_lists_convert():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "spanbert", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO_ROOT),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+convert\s+Convert an annotated corpus", result.stdout, re.MULTILINE)
