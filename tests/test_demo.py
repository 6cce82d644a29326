"""The offline demo's corpus writer and HTML report (the training step runs
in CI through `spacy project run demo`)."""

import spacy
from conftest import make_nlp
from demo import TEMPLATES, make_examples, render_html, render_svg, write_corpus
from spacy.tokens import DocBin
from spacy.training import Example


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
    import xml.etree.ElementTree as ET

    write_corpus(tmp_path, n_train=8, n_dev=4)
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_textcat", name="textcat")
    docs = list(DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    texts = [d.text for d in docs[:2]] + ["A & B <x> met in Zürich."]
    svg = render_svg(nlp, texts)
    root = ET.fromstring(svg)  # well-formed, escaped
    ns = "{http://www.w3.org/2000/svg}"
    words = [el.text for el in root.iter(ns + "text")]
    for text in texts:
        for token in nlp.make_doc(text):
            assert token.text in words
    # three evidence bars per doc (top-k 3 of the best category), at least one token each
    bars = [el for el in root.iter(ns + "rect") if el.get("fill") == "#c92a2a"]
    assert len(bars) >= 3 * len(texts)
