"""Tests for the readers of spacy_spanbert.commands.convert and its argparse
entry (`python -m spacy_spanbert.convert`): tiny inputs written to tmp_path,
one behaviour per test, imitating each real format's quirks."""

import codecs
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_spanbert.commands.convert import (
    FORMATS,
    ConversionError,
    main,
    read_conll,
    read_goemotions,
    read_litbank,
    read_prodigy,
    read_trec,
)
from spacy_spanbert.commands.convert.conll2012 import read_conll2012
from spacy_spanbert.commands.text_input import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def load(path: Path, nlp):
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


# A WNUT-17-like file: tab-only "blank" lines, a real blank line, IOB tags.
CONLL = (
    "@paulwalk\tO\n"
    "It\tO\n"
    "'s\tO\n"
    "Empire\tB-location\n"
    "State\tI-location\n"
    "\t\n"
    "From\tO\n"
    "Green\tB-person\n"
    "Day\tI-person\n"
    "\n"
    "new\tO\n"
    "york\tB-location\n"
    "\t\n"
)


# ---------------------------------------------------------------------------
# conll


def test_convert_conll_entities(tmp_path, nlp):
    docs = read_conll(write(tmp_path / "train.conll", CONLL), nlp)
    assert [[t.text for t in doc] for doc in docs] == [
        ["@paulwalk", "It", "'s", "Empire", "State"],
        ["From", "Green", "Day"],
        ["new", "york"],
    ]
    assert [ents(doc) for doc in docs] == [
        [(3, 5, "location")],
        [(1, 3, "person")],
        [(1, 2, "location")],
    ]
    assert all(t.ent_iob_ in ("B", "I", "O") for doc in docs for t in doc)
    assert docs[0].text == "@paulwalk It 's Empire State"


@pytest.mark.parametrize("blank", ["", "\t", "   ", "\t\t", " \t \r"])
def test_convert_conll_whitespace_only_lines_split_sentences(tmp_path, nlp, blank):
    text = f"a\tO\nb\tB-x\n{blank}\nc\tO\n{blank}\n{blank}\nd\tO\n"
    docs = read_conll(write(tmp_path / "in.conll", text), nlp)
    assert [doc.text for doc in docs] == ["a b", "c", "d"]


@pytest.mark.parametrize(
    "tags,expected",
    [
        (["B-x", "I-x", "O", "B-y"], [(0, 2, "x"), (3, 4, "y")]),
        (["I-x", "I-x", "O", "I-y"], [(0, 2, "x"), (3, 4, "y")]),  # IOB1
        (["I-x", "I-y", "B-y", "O"], [(0, 1, "x"), (1, 2, "y"), (2, 3, "y")]),
        (["O", "I-x", "B-x", "I-x"], [(1, 2, "x"), (2, 4, "x")]),
        (["B-creative-work", "I-creative-work", "I-creative-work", "O"], [(0, 3, "creative-work")]),
        (["O", "O", "O", "O"], []),
        # BIOES
        (["S-x", "B-y", "I-y", "E-y"], [(0, 1, "x"), (1, 4, "y")]),
        (["B-x", "E-x", "S-x", "S-x"], [(0, 2, "x"), (2, 3, "x"), (3, 4, "x")]),
        (["B-x", "E-x", "I-x", "O"], [(0, 2, "x"), (2, 3, "x")]),  # I after E starts anew
        (["O", "E-x", "B-y", "E-x"], [(1, 2, "x"), (2, 3, "y"), (3, 4, "x")]),  # lenient
        # BILUO (spaCy's own scheme)
        (["U-x", "B-y", "I-y", "L-y"], [(0, 1, "x"), (1, 4, "y")]),
        (["B-x", "L-x", "U-x", "O"], [(0, 2, "x"), (2, 3, "x")]),
        (["B-x", "I-x", "B-x", "L-x"], [(0, 2, "x"), (2, 4, "x")]),
    ],
)
def test_convert_conll_tag_schemes(tmp_path, nlp, tags, expected):
    text = "".join(f"w{i}\t{tag}\n" for i, tag in enumerate(tags))
    (doc,) = read_conll(write(tmp_path / "in.conll", text), nlp)
    assert ents(doc) == expected


def test_convert_conll_docstart_and_whitespace_columns(tmp_path, nlp):
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
        "-DOCSTART- -X- -X- O\n\n"
        "Peter NNP B-NP B-PER\n"
    )
    docs = read_conll(write(tmp_path / "conll03.txt", text), nlp)
    assert [doc.text for doc in docs] == ["EU rejects German", "Peter"]
    assert [ents(doc) for doc in docs] == [[(0, 1, "ORG"), (2, 3, "MISC")], [(0, 1, "PER")]]


@pytest.mark.parametrize("n_sents,expected", [(1, ["a b", "c", "d e"]), (2, ["a b c", "d e"]), (5, ["a b c d e"])])
def test_convert_conll_n_sents(tmp_path, nlp, n_sents, expected):
    text = "a\tB-x\nb\tO\n\t\nc\tB-y\n\nd\tO\ne\tI-x\n"
    docs = read_conll(write(tmp_path / "in.conll", text), nlp, n_sents=n_sents)
    assert [doc.text for doc in docs] == expected
    assert [[s.text for s in doc.sents] for doc in docs][0][0] == "a b"
    if n_sents == 5:
        assert [s.text for s in docs[0].sents] == ["a b", "c", "d e"]
        assert ents(docs[0]) == [(0, 1, "x"), (2, 3, "y"), (4, 5, "x")]


def test_convert_conll_skips_comment_lines_before_sentences(tmp_path, nlp):
    text = (
        "# id 8d1f domain=en\n#\tO\nlol\tO\n\n"  # a comment, then a "#" token
        "# sent_id = 2\n# text = New York\nNew\tB-LOC\nYork\tI-LOC\n"
    )
    docs = read_conll(write(tmp_path / "in.conll", text), nlp)
    assert [doc.text for doc in docs] == ["# lol", "New York"]
    assert ents(docs[1]) == [(0, 2, "LOC")]
    # inside a sentence a "#" line must be a token with a tag
    bad = write(tmp_path / "bad.conll", "a\tO\n#\tnot-a-tag\n")
    with pytest.raises(ConversionError, match=":2: invalid tag 'not-a-tag'"):
        read_conll(bad, nlp)


def test_convert_conll_docstart_ends_group(tmp_path, nlp):
    text = "a\tO\n\nb\tO\n\n-DOCSTART-\tO\n\nc\tO\n\nd\tO\n"
    docs = read_conll(write(tmp_path / "in.conll", text), nlp, n_sents=3)
    assert [doc.text for doc in docs] == ["a b", "c d"]


def test_convert_conll_accepts_vocab_and_limit(tmp_path, nlp):
    docs = read_conll(write(tmp_path / "in.conll", CONLL), nlp.vocab, limit=2)
    assert len(docs) == 2
    assert docs[0].vocab is nlp.vocab


@pytest.mark.parametrize(
    "text,lineno,message",
    [
        ("a\tO\nb\n", 2, "found 1 column"),
        ("a\tO\nb\tNN\tO\n", 2, "expected 2 columns"),
        ("a\tO\n\nb\tX-foo\n", 3, "invalid tag 'X-foo'"),
        ("a\tB-\n", 1, "invalid tag 'B-'"),
        ("a\to\n", 1, "invalid tag 'o'"),
        ("a\tO\n\tO\n", 2, "empty token"),
    ],
)
def test_convert_conll_malformed_line(tmp_path, nlp, text, lineno, message):
    path = write(tmp_path / "bad.conll", text)
    with pytest.raises(ConversionError, match=re.escape(f"{path}:{lineno}: ") + ".*" + re.escape(message)):
        read_conll(path, nlp)


def test_convert_conll_bad_encoding(tmp_path, nlp):
    path = tmp_path / "latin1.conll"
    path.write_bytes("a\tO\nb\tO\n\ncaf\xe9\tB-x\n".encode("latin-1"))
    with pytest.raises(ConversionError, match=re.escape(f"{path}:4: cannot decode")):
        read_conll(path, nlp)
    (doc, doc2) = read_conll(path, nlp, encoding="latin-1")
    assert doc2.text == "caf\xe9"


# ---------------------------------------------------------------------------
# litbank

# Two layers, innermost first, trailing tab on every line. "the Lord of
# London" is PER (outer) containing GPE "London" (inner); "Lord" alone is PER
# on layer 1 and the same PER span "Mr. Tulk" appears on both layers.
LITBANK_A = (
    "CHAPTER\tO\tO\t\n"
    "I\tO\tO\t\n"
    "\n"
    "the\tO\tB-PER\t\n"
    "Lord\tB-PER\tI-PER\t\n"
    "of\tO\tI-PER\t\n"
    "London\tB-GPE\tI-PER\t\n"
    "met\tO\tO\t\n"
    "Mr.\tB-PER\tB-PER\t\n"
    "Tulk\tI-PER\tI-PER\t\n"
    ".\tO\tO\t\n"
)
LITBANK_B = "In\tO\t\nLincoln\tB-FAC\t\n'sInn\tI-FAC\t\n"


def write_litbank(folder: Path) -> Path:
    folder.mkdir()
    write(folder / "2_b_brat.tsv", LITBANK_B)
    write(folder / "1_a_brat.tsv", LITBANK_A)
    write(folder / "1_a_brat.ann", "T1\tPER 0 3\tthe\n")  # ignored: not .tsv
    return folder


def test_convert_litbank_nested_spans(tmp_path, nlp):
    docs = read_litbank(write_litbank(tmp_path / "train"), nlp)
    assert [doc.text for doc in docs] == [
        "CHAPTER I the Lord of London met Mr. Tulk .",
        "In Lincoln 'sInn",
    ]
    spans = [(s.start, s.end, s.label_) for s in docs[0].spans["spanbert_ner"]]
    assert spans == [(2, 6, "PER"), (3, 4, "PER"), (5, 6, "GPE"), (7, 9, "PER")]
    assert ents(docs[0]) == [(2, 6, "PER"), (7, 9, "PER")]
    assert [(s.start, s.end, s.label_) for s in docs[1].spans["spanbert_ner"]] == [(1, 3, "FAC")]
    assert ents(docs[1]) == [(1, 3, "FAC")]


def test_convert_litbank_sentence_starts(tmp_path, nlp):
    (doc, _) = read_litbank(write_litbank(tmp_path / "train"), nlp)
    assert [s.text for s in doc.sents] == ["CHAPTER I", "the Lord of London met Mr. Tulk ."]


def test_convert_litbank_ents_prefer_longer_span_over_crossing_inner(tmp_path, nlp):
    # layer 1: a b c = X (0,3) ; layer 2: c d = Y (2,4), crossing; then e = Z
    text = "a\tB-X\tO\t\nb\tI-X\tO\t\nc\tI-X\tB-Y\t\nd\tO\tI-Y\t\ne\tO\tB-Z\t\n"
    (doc,) = read_litbank(write(tmp_path / "one.tsv", text), nlp)
    assert ents(doc) == [(0, 3, "X"), (4, 5, "Z")]
    assert len(doc.spans["spanbert_ner"]) == 3


def test_convert_litbank_n_sents_splits_files_keeping_nested_spans(tmp_path, nlp):
    docs = read_litbank(write_litbank(tmp_path / "train"), nlp, n_sents=1)
    assert [doc.text for doc in docs] == [
        "CHAPTER I",
        "the Lord of London met Mr. Tulk .",
        "In Lincoln 'sInn",
    ]
    spans = [(s.start, s.end, s.label_) for s in docs[1].spans["spanbert_ner"]]
    assert spans == [(0, 4, "PER"), (1, 2, "PER"), (3, 4, "GPE"), (5, 7, "PER")]
    assert ents(docs[1]) == [(0, 4, "PER"), (5, 7, "PER")]
    assert list(docs[0].spans["spanbert_ner"]) == [] and ents(docs[0]) == []
    assert all(doc[0].is_sent_start for doc in docs)
    with pytest.raises(ValueError, match="n_sents"):
        read_litbank(tmp_path / "train", nlp, n_sents=0)


def test_convert_litbank_n_sents_cli(tmp_path):
    output = tmp_path / "out.spacy"
    assert main(["litbank", str(write_litbank(tmp_path / "train")), str(output), "--n-sents", "2"]) == 0
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert [len(doc) for doc in docs] == [10, 3]


def test_convert_litbank_spans_key_and_limit(tmp_path, nlp):
    docs = read_litbank(write_litbank(tmp_path / "train"), nlp, spans_key="sc", limit=1)
    assert len(docs) == 1
    assert list(docs[0].spans) == ["sc"]


@pytest.mark.parametrize(
    "text,lineno,message",
    [
        ("a\tO\tO\t\nb\tO\t\n", 2, "expected 3 columns"),
        ("a\tO\t\nb\t\n", 2, "found 1 column"),
        ("a\tO\tB-PER\t\n\nb\tO\tX-PER\t\n", 3, "invalid tag 'X-PER'"),
    ],
)
def test_convert_litbank_malformed_line(tmp_path, nlp, text, lineno, message):
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(ConversionError, match=re.escape(f"{path}:{lineno}: ") + ".*" + re.escape(message)):
        read_litbank(path, nlp)


def test_convert_litbank_empty_folder(tmp_path, nlp):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no .tsv files"):
        read_litbank(tmp_path / "empty", nlp)


# ---------------------------------------------------------------------------
# prodigy


def prodigy_tokens(text):
    tokens, start = [], 0
    for i, word in enumerate(text.split(" ")):
        tokens.append({"text": word, "start": start, "end": start + len(word), "id": i})
        start += len(word) + 1
    return tokens


NER_ROWS = [
    {
        "text": "I took xanax today",
        "tokens": prodigy_tokens("I took xanax today"),
        "spans": [{"start": 7, "end": 12, "token_start": 2, "token_end": 2, "label": "DRUG"}],
        "answer": "accept",
    },
    {"text": "no drugs here", "tokens": prodigy_tokens("no drugs here"), "answer": "accept"},
    {"text": "rejected xanax", "spans": [{"start": 9, "end": 14, "label": "DRUG"}], "answer": "reject"},
    {"text": "ignored", "spans": [], "answer": "ignore"},
    {"text": "Louis Vuitton bags", "spans": [{"start": 0, "end": 13, "label": "BRAND"}]},
    {"text": "half of Gucci's line", "spans": [{"start": 9, "end": 13, "label": "BRAND"}]},
]


def write_jsonl(path: Path, rows) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows) + "\n")


def test_convert_prodigy_ner_spans(tmp_path, nlp):
    docs = read_prodigy(write_jsonl(tmp_path / "ner.jsonl", NER_ROWS), nlp)
    assert [doc.text for doc in docs] == [
        "I took xanax today",
        "no drugs here",
        "Louis Vuitton bags",
        "half of Gucci's line",
    ]
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [
        [("xanax", "DRUG")],
        [],
        [("Louis Vuitton", "BRAND")],
        [("Gucci", "BRAND")],
    ]
    assert docs[1].has_annotation("ENT_IOB")  # no spans = all O, not missing


def test_convert_prodigy_char_offsets_expand_to_tokens(tmp_path, nlp):
    row = {"text": "buy Louis Vuitton now", "spans": [{"start": 5, "end": 12, "label": "BRAND"}]}
    (doc,) = read_prodigy(write_jsonl(tmp_path / "ner.jsonl", [row]), nlp)
    assert [(e.text, e.label_) for e in doc.ents] == [("Louis Vuitton", "BRAND")]


def test_convert_prodigy_tokens_with_ws(tmp_path, nlp):
    row = {
        "text": "im fine.",
        "tokens": [
            {"text": "i", "ws": False},
            {"text": "m", "ws": True},
            {"text": "fine", "ws": False},
            {"text": ".", "ws": False},
        ],
        "spans": [{"token_start": 2, "token_end": 3, "label": "X"}],
    }
    (doc,) = read_prodigy(write_jsonl(tmp_path / "ner.jsonl", [row]), nlp)
    assert [t.text for t in doc] == ["i", "m", "fine", "."]
    assert doc.text == "im fine."
    assert ents(doc) == [(2, 4, "X")]


def test_convert_prodigy_binary_textcat(tmp_path, nlp):
    rows = [
        {"text": "Fix the docs", "label": "DOCUMENTATION", "answer": "accept"},
        {"text": "Crash on start", "label": "DOCUMENTATION", "answer": "reject"},
        {"text": "Unsure", "label": "DOCUMENTATION", "answer": "ignore"},
    ]
    docs = read_prodigy(write_jsonl(tmp_path / "tc.jsonl", rows), nlp)
    assert [(doc.text, doc.cats) for doc in docs] == [
        ("Fix the docs", {"DOCUMENTATION": 1.0}),
        ("Crash on start", {"DOCUMENTATION": 0.0}),
    ]
    assert [t.text for t in docs[0]] == ["Fix", "the", "docs"]


def test_convert_prodigy_cats(tmp_path, nlp):
    rows = [{"cats": {"OTHER": 1.0, "baking": 0}, "meta": {"id": "1"}, "text": "Chewy cookies?"}]
    (doc,) = read_prodigy(write_jsonl(tmp_path / "cooking.jsonl", rows), nlp)
    assert doc.cats == {"OTHER": 1.0, "baking": 0.0}
    assert [t.text for t in doc] == ["Chewy", "cookies", "?"]


def test_convert_prodigy_choice_rows(tmp_path, nlp):
    options = [
        {"id": "POSITIVE", "text": "positive"},
        {"id": "NEGATIVE", "text": "negative"},
        {"id": 3, "text": "three"},
    ]
    rows = [
        {"text": "Great film", "options": options, "accept": ["POSITIVE"], "answer": "accept"},
        {"text": "Mixed", "options": options, "accept": ["POSITIVE", 3], "answer": "accept"},
        {"text": "No pick", "options": options, "accept": []},
        {"text": "Skipped", "options": options, "accept": ["NEGATIVE"], "answer": "reject"},
        {"text": "Skipped too", "options": options, "accept": ["NEGATIVE"], "answer": "ignore"},
    ]
    docs = read_prodigy(write_jsonl(tmp_path / "choice.jsonl", rows), nlp)
    assert [(doc.text, doc.cats) for doc in docs] == [
        ("Great film", {"POSITIVE": 1.0, "NEGATIVE": 0.0, "3": 0.0}),
        ("Mixed", {"POSITIVE": 1.0, "NEGATIVE": 0.0, "3": 1.0}),
        ("No pick", {"POSITIVE": 0.0, "NEGATIVE": 0.0, "3": 0.0}),
    ]


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"text": "a", "options": [{"id": "X"}], "accept": ["Y"]}', "accepted id 'Y' is not among the options ['X']"),
        ('{"text": "a", "options": [{"text": "X"}], "accept": []}', "'options' must be a non-empty list"),
        ('{"text": "a", "options": [{"id": "X"}], "accept": "X"}', "'accept' must be a list"),
        ('{"text": "a", "spans": [}', "not JSON (Expecting value)"),
        ("[1, 2]", "expected a JSON object"),
        ('{"spans": []}', "no 'text'"),
        ('{"text": "  ", "label": "X", "answer": "accept"}', "no 'text'"),
        ('{"text": "a b", "spans": [{"start": 0, "end": 1}]}', "missing or empty 'label'"),
        ('{"text": "a b", "spans": [{"start": 0, "end": 9, "label": "X"}]}', "beyond the text"),
        (
            '{"text": "a b c", "spans": [{"start": 0, "end": 3, "label": "X"}, {"start": 2, "end": 5, "label": "Y"}]}',
            "overlapping spans",
        ),
        ('{"text": "a", "label": "X", "answer": "maybe"}', "unknown answer 'maybe'"),
        ('{"text": "a", "cats": {"X": "yes"}}', "'cats' must map"),
    ],
)
def test_convert_prodigy_malformed_row(tmp_path, nlp, line, message):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n' + line + "\n")
    with pytest.raises(ConversionError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(message)):
        read_prodigy(path, nlp)


# ---------------------------------------------------------------------------
# trec

TREC = (
    "DESC:manner How did serfdom develop in and then leave Russia ?\n"
    "ENTY:cremat What films featured the character Popeye Doyle ?\n"
    "HUM:ind Who was the caf\xe9 owner  in Casablanca ?\n"
    "DESC:def What is a fjord ?\n"
)


def test_convert_trec_one_hot_cats(tmp_path, nlp):
    docs = read_trec(write(tmp_path / "train.label", TREC, "latin-1"), nlp)
    assert len(docs) == 4
    assert docs[2].text == "Who was the caf\xe9 owner in Casablanca ?"
    assert [t.text for t in docs[0]][-2:] == ["Russia", "?"]
    assert [doc.cats for doc in docs] == [
        {"DESC": 1.0, "ENTY": 0.0, "HUM": 0.0},
        {"DESC": 0.0, "ENTY": 1.0, "HUM": 0.0},
        {"DESC": 0.0, "ENTY": 0.0, "HUM": 1.0},
        {"DESC": 1.0, "ENTY": 0.0, "HUM": 0.0},
    ]


def test_convert_trec_fine_labels(tmp_path, nlp):
    docs = read_trec(write(tmp_path / "train.label", TREC, "latin-1"), nlp, fine=True)
    assert sorted(docs[0].cats) == ["DESC:def", "DESC:manner", "ENTY:cremat", "HUM:ind"]
    assert [max(doc.cats, key=doc.cats.get) for doc in docs] == [
        "DESC:manner",
        "ENTY:cremat",
        "HUM:ind",
        "DESC:def",
    ]


def test_convert_trec_limit_keeps_all_labels(tmp_path, nlp):
    docs = read_trec(write(tmp_path / "train.label", TREC, "latin-1"), nlp, limit=1)
    assert docs[0].cats == {"DESC": 1.0, "ENTY": 0.0, "HUM": 0.0}


@pytest.mark.parametrize(
    "line,message",
    [
        ("NUM:date", "label 'NUM:date' but no question text"),
        ("NUM:date   ", "label 'NUM:date' but no question text"),
        ("When was it ?", "expected a COARSE:fine label first, found 'When'"),
        (":date When ?", "expected a COARSE:fine label"),
    ],
)
def test_convert_trec_malformed_line(tmp_path, nlp, line, message):
    path = write(tmp_path / "bad.label", TREC + line + "\n", "latin-1")
    with pytest.raises(ConversionError, match=re.escape(f"{path}:5: {message}")):
        read_trec(path, nlp)


def test_convert_trec_dev_last(tmp_path, nlp, capsys):
    path = write(tmp_path / "train.label", TREC, "latin-1")
    train, dev = tmp_path / "out" / "train.spacy", tmp_path / "out" / "dev.spacy"
    argv = ["trec", str(path), str(train), "--dev-output", str(dev), "--dev-last", "1"]
    assert main(argv) == 0
    train_docs, dev_docs = load(train, nlp), load(dev, nlp)
    assert [doc.text for doc in dev_docs] == ["What is a fjord ?"]
    assert len(train_docs) == 3
    assert dev_docs[0].cats == {"DESC": 1.0, "ENTY": 0.0, "HUM": 0.0}
    out = capsys.readouterr().out
    assert f"Wrote 3 docs (26 tokens) to {train}" in out
    assert f"Wrote 1 doc (5 tokens) to {dev}" in out


def test_convert_dev_last_leaves_no_training_docs(tmp_path, capsys):
    path = write(tmp_path / "train.label", TREC, "latin-1")
    argv = ["trec", str(path), str(tmp_path / "t.spacy"), "--dev-output", str(tmp_path / "d.spacy"), "--dev-last", "4"]
    assert main(argv) == 1
    assert "--dev-last 4 leaves no training docs" in capsys.readouterr().err
    assert not (tmp_path / "t.spacy").exists()


# ---------------------------------------------------------------------------
# goemotions

LABELS = "admiration\namusement\nanger\nneutral"  # no final newline, like labels.txt
GOEMOTIONS = (
    "My favourite food is anything I didn't have to cook myself.\t3\teebbqej\n"
    "WHY THE FUCK IS BAYLESS ISOING\t2\teezlygj\n"
    "lol, love it\t0,1\ted00q6i\n"
)


def test_convert_goemotions_multilabel_cats(tmp_path, nlp):
    labels = write(tmp_path / "labels.txt", LABELS)
    docs = read_goemotions(write(tmp_path / "train.tsv", GOEMOTIONS), nlp, labels=labels)
    assert [doc.cats for doc in docs] == [
        {"admiration": 0.0, "amusement": 0.0, "anger": 0.0, "neutral": 1.0},
        {"admiration": 0.0, "amusement": 0.0, "anger": 1.0, "neutral": 0.0},
        {"admiration": 1.0, "amusement": 1.0, "anger": 0.0, "neutral": 0.0},
    ]
    assert [t.text for t in docs[2]] == ["lol", ",", "love", "it"]  # tokenised, not split


@pytest.mark.parametrize(
    "line,message",
    [
        ("hello\t4\tid1", "unknown label id '4'"),
        ("hello\t1,x\tid1", "unknown label id 'x'"),
        ("hello\t1", "expected 3 tab-separated columns"),
        ("hel\tlo\t1\tid1", "expected 3 tab-separated columns"),
        ("\t1\tid1", "label ids '1' but no text"),
        ("hello\t\tid1", "no label ids"),
    ],
)
def test_convert_goemotions_malformed_line(tmp_path, nlp, line, message):
    labels = write(tmp_path / "labels.txt", LABELS)
    path = write(tmp_path / "bad.tsv", GOEMOTIONS + line + "\n")
    with pytest.raises(ConversionError, match=re.escape(f"{path}:4: {message}")):
        read_goemotions(path, nlp, labels=labels)


def test_convert_goemotions_requires_labels(tmp_path, capsys):
    path = write(tmp_path / "train.tsv", GOEMOTIONS)
    with pytest.raises(SystemExit) as excinfo:
        main(["goemotions", str(path), str(tmp_path / "out.spacy")])
    assert excinfo.value.code == 2
    assert "requires --labels" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# CLI


@pytest.mark.parametrize(
    "fmt,name,content,extra,n_docs,summary",
    [
        ("conll", "in.conll", CONLL, [], 3, "location"),
        ("conll", "in.conll", CONLL, ["--n-sents", "2"], 2, "person"),
        ("trec", "train.label", TREC, [], 4, "DESC"),
        ("prodigy", "ner.jsonl", "".join(json.dumps(r) + "\n" for r in NER_ROWS), [], 4, "BRAND"),
        ("goemotions", "train.tsv", GOEMOTIONS, ["--labels", "LABELS"], 3, "neutral"),
    ],
)
def test_convert_cli_writes_docbin(tmp_path, nlp, capsys, fmt, name, content, extra, n_docs, summary):
    path = write(tmp_path / name, content, "latin-1" if fmt == "trec" else "utf-8")
    extra = [str(write(tmp_path / "labels.txt", LABELS)) if a == "LABELS" else a for a in extra]
    output = tmp_path / "sub" / "out.spacy"
    assert main([fmt, str(path), str(output), *extra]) == 0
    docs = load(output, nlp)
    assert len(docs) == n_docs
    out = capsys.readouterr().out
    assert f"Wrote {n_docs} docs ({sum(len(d) for d in docs)} tokens) to {output}" in out
    assert summary in out


def test_convert_cli_litbank_round_trip(tmp_path, nlp, capsys):
    folder = write_litbank(tmp_path / "litbank")
    output = tmp_path / "lit.spacy"
    assert main(["litbank", str(folder), str(output), "--spans-key", "sc"]) == 0
    docs = load(output, nlp)
    assert [(s.start, s.end, s.label_) for s in docs[0].spans["sc"]] == [
        (2, 6, "PER"),
        (3, 4, "PER"),
        (5, 6, "GPE"),
        (7, 9, "PER"),
    ]
    assert ents(docs[0]) == [(2, 6, "PER"), (7, 9, "PER")]
    assert [s.text for s in docs[0].sents][0] == "CHAPTER I"
    out = capsys.readouterr().out
    assert "Entities (doc.ents): 3" in out
    assert "Spans (doc.spans['sc']): 5" in out


def test_convert_cli_limit(tmp_path, nlp):
    output = tmp_path / "out.spacy"
    assert main(["conll", str(write(tmp_path / "in.conll", CONLL)), str(output), "--limit", "1"]) == 0
    assert [doc.text for doc in load(output, nlp)] == ["@paulwalk It 's Empire State"]


@pytest.mark.parametrize(
    "fmt,content,extra,location",
    [
        ("conll", "a\tO\n\nb\tX-foo\n", [], ":3: invalid tag 'X-foo'"),
        ("prodigy", '{"text": "a"}\n{"text": \n', [], ":2: not JSON"),
        ("trec", "NUM:date\n", [], ":1: label 'NUM:date' but no question text"),
        ("goemotions", "hi\t9\tid\n", ["--labels", "LABELS"], ":1: unknown label id '9'"),
    ],
)
def test_convert_cli_malformed_input_exits_1(tmp_path, capsys, fmt, content, extra, location):
    path = write(tmp_path / "bad.txt", content)
    extra = [str(write(tmp_path / "labels.txt", LABELS)) if a == "LABELS" else a for a in extra]
    output = tmp_path / "out.spacy"
    assert main([fmt, str(path), str(output), *extra]) == 1
    captured = capsys.readouterr()
    assert f"{path}{location}" in captured.err
    assert "Traceback" not in captured.err
    assert not output.exists()


@pytest.mark.parametrize("content", ["", "\n\t\n\n", "-DOCSTART- O\n\n"])
def test_convert_cli_empty_output(tmp_path, capsys, content):
    path = write(tmp_path / "empty.conll", content)
    assert main(["conll", str(path), str(tmp_path / "out.spacy")]) == 1
    assert f"{path}: no documents found" in capsys.readouterr().err


def test_convert_cli_missing_input(tmp_path, capsys):
    path = tmp_path / "nope.conll"
    assert main(["conll", str(path), str(tmp_path / "out.spacy")]) == 1
    assert f"{path}: cannot open" in capsys.readouterr().err


def test_convert_cli_option_for_wrong_format(tmp_path, capsys):
    path = write(tmp_path / "in.conll", CONLL)
    with pytest.raises(SystemExit):
        main(["conll", str(path), str(tmp_path / "out.spacy"), "--fine"])
    assert "--fine only applies to the trec format" in capsys.readouterr().err


def test_convert_module_entry_point_help():
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    )
    result = subprocess.run(
        [sys.executable, "-m", "spacy_spanbert.convert", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO_ROOT.parent),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m spacy_spanbert.convert" in result.stdout
    for fmt in ("conll", "litbank", "prodigy", "trec", "goemotions"):
        assert fmt in result.stdout


def test_convert_drop_texts_in(tmp_path, nlp, capsys):
    """A dev set that shares rows with the training set (textcat_cooking
    has 99) is written without them."""
    train_rows = [{"text": "Chewy cookies?", "cats": {"OTHER": 1.0}}, {"text": "Sharp knives", "cats": {"OTHER": 0.0}}]
    dev_rows = [{"text": "Sharp knives", "cats": {"OTHER": 0.0}}, {"text": "Proofing bread", "cats": {"OTHER": 1.0}}]
    train = tmp_path / "train.spacy"
    dev = tmp_path / "dev.spacy"
    assert main(["prodigy", str(write_jsonl(tmp_path / "train.jsonl", train_rows)), str(train)]) == 0
    argv = ["prodigy", str(write_jsonl(tmp_path / "dev.jsonl", dev_rows)), str(dev), "--drop-texts-in", str(train)]
    assert main(argv) == 0
    assert [doc.text for doc in load(dev, nlp)] == ["Proofing bread"]
    assert f"Dropped 1 docs whose text occurs in {train}" in capsys.readouterr().out


def test_convert_drop_texts_in_errors(tmp_path, capsys):
    rows = [{"text": "Sharp knives", "cats": {"OTHER": 0.0}}]
    src = write_jsonl(tmp_path / "dev.jsonl", rows)
    missing = tmp_path / "missing.spacy"
    assert main(["prodigy", str(src), str(tmp_path / "d.spacy"), "--drop-texts-in", str(missing)]) == 1
    assert f"--drop-texts-in {missing}: cannot read it as a .spacy file" in capsys.readouterr().err
    same = tmp_path / "same.spacy"
    assert main(["prodigy", str(src), str(same)]) == 0
    assert main(["prodigy", str(src), str(tmp_path / "d.spacy"), "--drop-texts-in", str(same)]) == 1
    assert "--drop-texts-in leaves nothing to write" in capsys.readouterr().err
    assert not (tmp_path / "d.spacy").exists()


# ---------------------------------------------------------------------------
# text input: every format reads through commands/text_input.py


def variant_bytes(text: str, variant: str, encoding: str = "utf-8") -> bytes:
    """`text` encoded as a file of that variant: plain, with a UTF-8 byte
    order mark, with CRLF line breaks, or gzipped."""
    data = text.encode(encoding)
    if variant == "bom":
        return codecs.BOM_UTF8 + data
    if variant == "crlf":
        return data.replace(b"\n", b"\r\n")
    if variant == "gz":
        return gzip.compress(data)
    return data


def annotations(docs):
    return [
        (
            doc.text,
            ents(doc),
            doc.cats,
            {key: [(s.start, s.end, s.label_) for s in group] for key, group in doc.spans.items()},
        )
        for doc in docs
    ]


CONLL2012 = (
    "#begin document (tiny); part 000\n"
    "tiny\t0\t0\tMerkel\tNNP\t-\t-\t-\t-\t-\t*\t(0)\n"
    "tiny\t0\t1\tsaid\tVBD\t-\t-\t-\t-\t-\t*\t-\n"
    "tiny\t0\t2\tshe\tPRP\t-\t-\t-\t-\t-\t*\t(0)\n"
    "\n"
    "#end document\n"
)

READERS = {
    "conll": ("in.conll", CONLL, "utf-8", lambda path, nlp: read_conll(path, nlp)),
    "litbank": ("one.tsv", LITBANK_A, "utf-8", lambda path, nlp: read_litbank(path, nlp)),
    "prodigy": (
        "in.jsonl",
        "".join(json.dumps(r) + "\n" for r in NER_ROWS),
        "utf-8",
        lambda p, nlp: read_prodigy(p, nlp),
    ),
    "trec": ("train.label", TREC, "latin-1", lambda path, nlp: read_trec(path, nlp)),
    "conll2012": ("doc.conll", CONLL2012, "utf-8", lambda path, nlp: read_conll2012(path, nlp)),
    "goemotions": (
        "train.tsv",
        GOEMOTIONS,
        "utf-8",
        lambda p, nlp: read_goemotions(p, nlp, labels=list(LABELS.split())),
    ),
}


@pytest.mark.parametrize("variant", ["bom", "crlf", "gz"])
@pytest.mark.parametrize("fmt", sorted(READERS))
def test_convert_text_input_variants_read_like_plain_files(tmp_path, nlp, fmt, variant):
    name, text, encoding, read = READERS[fmt]
    plain = tmp_path / name
    plain.write_bytes(text.encode(encoding))
    other = tmp_path / "variant" / (name + ".gz" if variant == "gz" else name)
    other.parent.mkdir()
    other.write_bytes(variant_bytes(text, variant, encoding))
    expected = annotations(read(plain, nlp))
    assert expected and annotations(read(other, nlp)) == expected


def test_convert_text_input_covers_every_line_based_format():
    # squad and spert read one JSON document (read_text), tested in their own files
    assert set(READERS) | {"squad", "spert"} == set(FORMATS)


def test_convert_conll_crlf_keeps_tags_clean(tmp_path, nlp):
    path = tmp_path / "crlf.conll"
    path.write_bytes(b"New\tB-LOC\r\nYork\tI-LOC\r\n\r\nhi\tO\r\n")
    docs = read_conll(path, nlp)
    assert [ents(doc) for doc in docs] == [[(0, 2, "LOC")], []]
    assert [doc.text for doc in docs] == ["New York", "hi"]


def test_convert_prodigy_bom_jsonl(tmp_path, nlp):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        codecs.BOM_UTF8 + b'{"text": "I took xanax", "spans": [{"start": 7, "end": 12, "label": "DRUG"}]}\n'
    )
    (doc,) = read_prodigy(path, nlp)
    assert [(e.text, e.label_) for e in doc.ents] == [("xanax", "DRUG")]


def test_convert_litbank_folder_reads_tsv_and_tsv_gz(tmp_path, nlp):
    folder = write_litbank(tmp_path / "train")
    (folder / "2_b_brat.tsv").unlink()
    (folder / "2_b_brat.tsv.gz").write_bytes(gzip.compress(LITBANK_B.encode("utf-8")))
    (folder / "3_c.txt.gz").write_bytes(gzip.compress(b"ignored\tO\n"))
    docs = read_litbank(folder, nlp)
    assert [doc.text for doc in docs] == ["CHAPTER I the Lord of London met Mr. Tulk .", "In Lincoln 'sInn"]
    assert ents(docs[1]) == [(1, 3, "FAC")]


def test_convert_gzip_error_names_the_line(tmp_path, nlp):
    path = tmp_path / "bad.conll.gz"
    path.write_bytes(gzip.compress(b"a\tO\nb\tX-foo\n"))
    with pytest.raises(ConversionError, match=re.escape(f"{path}:2: invalid tag 'X-foo'")):
        read_conll(path, nlp)


def test_convert_corrupt_gzip_is_a_conversion_error(tmp_path, nlp):
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"not gzip at all\n")
    with pytest.raises(ConversionError, match=re.escape(f"{path}: cannot decompress")):
        read_prodigy(path, nlp)


def test_convert_conversion_error_is_the_readers_input_error():
    assert ConversionError is InputError
    assert issubclass(ConversionError, ValueError)


@pytest.mark.parametrize(
    "read,kwargs,message",
    [
        (read_conll, {"limit": 0}, "read_conll: limit must be a positive integer, got 0"),
        (read_conll, {"n_sents": 0}, "read_conll: n_sents must be a positive integer, got 0"),
        (read_trec, {"limit": True}, "read_trec: limit must be a positive integer, got True"),
    ],
)
def test_convert_reader_rejects_bad_counts(tmp_path, nlp, read, kwargs, message):
    path = write(tmp_path / "in.txt", "DESC:def a\tO\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        read(path, nlp, **kwargs)


def test_convert_reader_rejects_other_pipelines(tmp_path):
    with pytest.raises(TypeError, match=re.escape("expected a Language, a Vocab or a language code")):
        read_conll(write(tmp_path / "in.conll", CONLL), 42)
