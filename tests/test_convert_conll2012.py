"""The conll2012 converter: CoNLL-2012 coreference files -> cluster span groups."""

import gzip
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_spanbert.commands.convert.conll2012 import read_conll2012
from spacy_spanbert.commands.convert.engine import FORMATS, convert
from spacy_spanbert.commands.text_input import InputError

LITBANK = Path("/work/shared/data/litbank_coref")

# Whitespace-aligned, as in OntoNotes: word in column 4, chain ids last.
ONTONOTES = """#begin document (bn/test); part 000
bn/test 0 0 John NNP - - - - (PERSON) - (1
bn/test 0 1 Smith NNP - - - - * - 1)
bn/test 0 2 saw VBD - - - - * - -
bn/test 0 3 his PRP$ - - - - * - (2|(1)
bn/test 0 4 dog NN - - - - * - 2)
bn/test 0 5 . . - - - - * - -

bn/test 0 0 He PRP - - - - * - (1)
bn/test 0 1 barked VBD - - - - * - -
#end document
#begin document (bn/test); part 001
bn/test 1 0 The DT - - - - * - (3
bn/test 1 1 big JJ - - - - * - (3
bn/test 1 2 city NN - - - - * - 3)|3)
bn/test 1 3 it PRP - - - - * - (4)
#end document
"""
# Tab-separated with an empty last column for "none", as in LitBank.
LITBANK_STYLE = (
    "#begin document (x); part 0\n"
    "x\t0\t0\tShe\t_\t_\t_\t_\t_\t_\t_\t_\t(0)\n"
    "x\t0\t1\tsaw\t_\t_\t_\t_\t_\t_\t_\t_\t\n"
    "x\t0\t2\therself\t_\t_\t_\t_\t_\t_\t_\t_\t(0)\n"
    "#end document\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf8")
    return path


def _clusters(doc):
    keys = sorted((k for k in doc.spans if k.startswith("coref_clusters_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return [[(s.start, s.end) for s in doc.spans[k]] for k in keys]


def test_convert_conll2012_nested_multiple_ids_and_parts(tmp_path):
    docs = read_conll2012(_write(tmp_path / "a.conll", ONTONOTES))
    assert len(docs) == 2
    assert [t.text for t in docs[0]] == ["John", "Smith", "saw", "his", "dog", ".", "He", "barked"]
    assert [t.is_sent_start for t in docs[0]] == [True, False, False, False, False, False, True, False]
    # chain 1: John Smith, his, He; chain 2: his dog (numbered by first mention)
    assert _clusters(docs[0]) == [[(0, 2), (3, 4), (6, 7)], [(3, 5)]]
    # nested mentions of the same chain close innermost first
    assert _clusters(docs[1]) == [[(0, 3), (1, 3)], [(3, 4)]]


def test_convert_conll2012_litbank_style_and_gz(tmp_path):
    path = tmp_path / "b.conll.gz"
    with gzip.open(path, "wt", encoding="utf8") as file_:
        file_.write(LITBANK_STYLE)
    (doc,) = read_conll2012(tmp_path)  # a folder: its .conll and .conll.gz files
    assert doc.text == "She saw herself"
    assert _clusters(doc) == [[(0, 1), (2, 3)]]


@pytest.mark.parametrize(
    "text,match",
    [
        (
            ONTONOTES.replace("- 1)\n", "- 7)\n", 1),
            r"a\.conll:3: chain '7' closes here but none of its mentions is open",
        ),
        (
            ONTONOTES.replace("- (4)\n", "- (4\n"),
            r"a\.conll:16: a mention of chain '4' opens here and is never closed \(the document ends on line 17\)",
        ),
        (ONTONOTES.replace("- (2|(1)\n", "- (2|x\n"), r"a\.conll:5: malformed coreference column '\(2\|x'"),
        (
            ONTONOTES.replace("bn/test 0 2 saw VBD - - - - * - -\n", "bn/test 0 2\n"),
            r"a\.conll:4: expected at least 5 columns",
        ),
        ("x 0 0 He PRP -\n", r"a\.conll:1: a token line outside a document"),
        (
            ONTONOTES.replace("#end document\n", "", 1),
            r"a\.conll:11: '#begin document' before the document begun on line 1",
        ),
        ("#end document\n", r"a\.conll:1: '#end document' without a '#begin document'"),
        (ONTONOTES.rsplit("#end document", 1)[0], r"a\.conll: the document begun on line 12 has no '#end document'"),
        ("#begin document (x); part 0\n#end document\n", r"a\.conll:1: the document begun here has no tokens"),
    ],
)
def test_convert_conll2012_errors_name_file_and_line(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        read_conll2012(_write(tmp_path / "a.conll", text))


def test_convert_conll2012_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no .conll files"):
        read_conll2012(tmp_path)


def test_convert_conll2012_engine(tmp_path):
    assert "conll2012" in FORMATS
    result = convert("conll2012", _write(tmp_path / "a.conll", ONTONOTES), tmp_path / "out.spacy", limit=1)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert len(result.docs) == len(docs) == 1
    assert _clusters(docs[0]) == [[(0, 2), (3, 4), (6, 7)], [(3, 5)]]


@pytest.mark.skipif(not LITBANK.exists(), reason="needs ../shared/data/litbank_coref")
def test_convert_conll2012_litbank_dev():
    docs = read_conll2012(LITBANK / "dev")
    assert len(docs) == 10
    assert all(len(doc) > 1000 and len(_clusters(doc)) > 10 for doc in docs)
