"""The offline demo's corpus writer and HTML report (the training step runs
in CI through `spacy project run demo`)."""

import xml.etree.ElementTree as ET

import pytest
import spacy
from conftest import make_nlp
from demo import MARK_ROWS, SVG_CHAR, SVG_GUTTER, TEMPLATES, make_examples, render_html, render_svg, write_corpus
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_spanbert import fit_occlusion_estimator

SVG = "{http://www.w3.org/2000/svg}"


def test_demo_corpus_entities_align_and_topics_are_one_hot(tmp_path):
    counts = write_corpus(tmp_path, n_train=40, n_dev=12, seed=3)
    assert counts == {"train": 40, "dev": 12}
    nlp = spacy.blank("en")
    for split, n in counts.items():
        docs = list(DocBin().from_disk(tmp_path / f"{split}.spacy").get_docs(nlp.vocab))
        assert len(docs) == n
        for doc in docs:
            assert len(doc.ents) >= 1 and {e.label_ for e in doc.ents} <= {"PER", "LOC", "ORG"}
            assert sorted(doc.cats) == sorted(TEMPLATES) and sum(doc.cats.values()) == 1.0
    # every topic is represented, and the splits differ
    assert {max(c, key=c.get) for c in (d.cats for d in docs)} == set(TEMPLATES)
    assert make_examples(8, 0) != make_examples(8, 1)


def test_demo_report_html_has_entities_spans_and_evidence(tiny_bert, tmp_path):
    write_corpus(tmp_path, n_train=8, n_dev=4)
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner")
    nlp.add_pipe("spanbert_textcat", name="textcat")
    docs = list(DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    html = render_html(nlp, [d.text for d in docs[:2]])
    assert "doc.spans['spanbert_ner']" in html
    assert "doc.spans['textcat_evidence']" in html
    assert docs[0].text.split()[0] in html


def test_demo_picture_is_svg_with_tokens_entities_and_evidence(tiny_bert, tmp_path):
    write_corpus(tmp_path, n_train=8, n_dev=4)
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_textcat", name="textcat")
    docs = list(DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    texts = [d.text for d in docs[:2]] + ["A & B <x> met in Zürich."]
    svg = render_svg(nlp, texts)
    root = ET.fromstring(svg)  # well-formed, escaped
    words = [el.text for el in root.iter(SVG + "text")]
    for text in texts:
        for token in nlp.make_doc(text):
            assert token.text in words
    # three evidence bars per doc (top-k 3 of the best category), at least one token each
    bars = [el for el in root.iter(SVG + "rect") if el.get("fill") == "#c92a2a"]
    assert len(bars) >= 3 * len(texts)


@pytest.mark.filterwarnings("ignore:.*W006")  # no NER in this pipeline: displaCy finds no entities
def test_demo_picture_sets_estimated_evidence_beside_real_occlusion(tiny_bert, tmp_path):
    """With a fitted occlusion estimator the picture has both rows, each of
    the same number of single tokens, and the darkest occlusion mark is under
    the token whose removal lowers the best category's probability most."""
    write_corpus(tmp_path, n_train=8, n_dev=4)
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_textcat", name="textcat")
    docs = list(DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab))
    fix_random_seed(0)
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    fit_occlusion_estimator(nlp, docs, max_docs=8)
    text = docs[0].text
    root = ET.fromstring(render_svg(nlp, [text]))
    names = {el.text for el in root.iter(SVG + "text")}
    assert {"evidence (estimate)", "occlusion (real)"} <= names
    rows = {
        row: [el for el in root.iter(SVG + "rect") if el.get("fill") == colour]
        for row, (colour, _) in MARK_ROWS.items()
    }
    assert len(rows["evidence"]) == len(rows["occlusion"]) == 3  # evidence_top_k single tokens
    # real leave-one-out drops, by hand
    doc = nlp(text)
    best = max(doc.cats, key=doc.cats.get)
    drops = [doc.cats[best] - nlp(" ".join(t.text for t in doc if t.i != i)).cats[best] for i in range(len(doc))]
    darkest = max(rows["occlusion"], key=lambda el: float(el.get("fill-opacity")))
    column = round((float(darkest.get("x")) - SVG_GUTTER) / SVG_CHAR)
    (token,) = [t for t in doc if t.idx == column]
    assert max(drops) - min(drops) > 0.01 and drops[token.i] == pytest.approx(max(drops), abs=1e-5)
    # displaCy renders the estimate's group too
    assert "doc.spans['textcat_evidence']" in render_html(nlp, [text])
