"""The spert converter: SpERT JSON -> entities and doc._.relations."""

import gzip
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_spanbert.commands.convert.common import ConversionError
from spacy_spanbert.commands.convert.engine import convert
from spacy_spanbert.commands.convert.spert import read_spert
from spacy_spanbert.rel import ensure_relations_extension, get_relations

ITEMS = [
    {
        "tokens": ["Angela", "Merkel", "lives", "in", "Berlin", "."],
        "entities": [{"type": "Peop", "start": 0, "end": 2}, {"type": "Loc", "start": 4, "end": 5}],
        "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
    },
    {
        "tokens": ["University", "of", "Paris"],
        "entities": [{"type": "Org", "start": 0, "end": 3}, {"type": "Loc", "start": 2, "end": 3}],
        "relations": [{"type": "OrgBased_In", "head": 0, "tail": 1}],
    },
    {"tokens": ["Nothing", "here"], "entities": [], "relations": []},
]
CONLL04 = Path("/work/shared/data/conll04/dev.json")


def _write(path, data, gz=False):
    text = json.dumps(data)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf8")))
    else:
        path.write_text(text, encoding="utf8")
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_convert_spert_reads_items(tmp_path, gz):
    docs = read_spert(_write(tmp_path / ("in.json.gz" if gz else "in.json"), ITEMS, gz), "en")
    assert [len(d) for d in docs] == [6, 3, 2]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Angela Merkel", "Peop"), ("Berlin", "Loc")]
    assert docs[0]._.relations == [{"head": [0, 2], "tail": [4, 5], "label": "Live_In", "score": 1.0}]
    # overlapping entities: all in the span group, the longest in doc.ents
    assert [(s.start, s.end) for s in docs[1].spans["spert_entities"]] == [(0, 3), (2, 3)]
    assert [(e.start, e.end) for e in docs[1].ents] == [(0, 3)]
    assert docs[1]._.relations[0]["tail"] == [2, 3]
    assert docs[2]._.relations == []


def test_convert_spert_docbin_keeps_relations(tmp_path):
    result = convert("spert", _write(tmp_path / "in.json", ITEMS), tmp_path / "out.spacy")
    assert "Wrote 3 docs" in result.summary
    ensure_relations_extension()
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    [(head, tail, label, _)] = get_relations(docs[0])
    assert (head.text, head.label_, tail.text, label) == ("Angela Merkel", "Peop", "Berlin", "Live_In")


@pytest.mark.parametrize(
    "data,code,where",
    [
        ({"tokens": ["a"]}, "E510", ""),
        ([{"tokens": []}], "E511", "item 0"),
        ([ITEMS[0], {"entities": []}], "E511", "item 1"),
        ([{"tokens": ["a"], "entities": [{"type": "X", "start": 0, "end": 2}]}], "E512", "item 0"),
        (
            [{"tokens": ["a"], "entities": [{"type": "X", "start": 0, "end": 1}], "relations": [{"head": 0}]}],
            "E513",
            "",
        ),
        (
            [
                ITEMS[0],
                {
                    "tokens": ["a"],
                    "entities": [{"type": "X", "start": 0, "end": 1}],
                    "relations": [{"type": "R", "head": 0, "tail": 3}],
                },
            ],
            "E514",
            "item 1: relation 0",
        ),
    ],
)
def test_convert_spert_malformed(tmp_path, data, code, where):
    with pytest.raises(ConversionError, match=f"{code}.*{where}"):
        read_spert(_write(tmp_path / "bad.json", data))


def test_convert_spert_limit(tmp_path):
    assert len(read_spert(_write(tmp_path / "in.json", ITEMS), limit=2)) == 2


@pytest.mark.skipif(not CONLL04.exists(), reason="needs ../shared/data/conll04")
def test_convert_spert_conll04_dev():
    docs = read_spert(CONLL04)
    assert len(docs) == 231
    raw = json.loads(CONLL04.read_text())
    assert sum(len(d._.relations) for d in docs) == sum(len(item["relations"]) for item in raw)
