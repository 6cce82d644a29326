"""The displaCy pictures of relations and coreference clusters."""

import spacy
from spacy import displacy
from spacy.tokens import Span

from spacy_spanbert import clusters_for_displacy, relations_for_displacy
from spacy_spanbert.rel import ensure_relations_extension


def _doc():
    nlp = spacy.blank("en")
    ensure_relations_extension()
    doc = nlp.make_doc("Angela Merkel met Emmanuel Macron in Berlin .")
    doc.ents = [Span(doc, 0, 2, "Peop"), Span(doc, 3, 5, "Peop"), Span(doc, 6, 7, "Loc")]
    doc._.relations = [
        {"head": [0, 2], "tail": [6, 7], "label": "Live_In", "score": 0.9},
        {"head": [3, 5], "tail": [0, 2], "label": "Meets", "score": 0.2},
    ]
    return doc


def test_relations_for_displacy_collapses_arguments_and_points_to_the_tail():
    data, options = relations_for_displacy(_doc())
    assert [w["text"] for w in data["words"]] == ["Angela Merkel", "met", "Emmanuel Macron", "in", "Berlin", "."]
    assert [w["tag"] for w in data["words"]] == ["Peop", "", "Peop", "", "Loc", ""]
    assert data["arcs"] == [
        {"start": 0, "end": 4, "label": "Live_In", "dir": "right"},
        {"start": 0, "end": 2, "label": "Meets", "dir": "left"},
    ]
    svg = displacy.render(data, style="dep", manual=True, options=options, jupyter=False)
    assert "Live_In" in svg and "Angela Merkel" in svg


def test_relations_for_displacy_min_score_and_non_entity_arguments():
    doc = _doc()
    doc.ents = []
    data, _ = relations_for_displacy(doc, min_score=0.5)
    assert [w["text"] for w in data["words"]] == ["Angela Merkel", "met", "Emmanuel", "Macron", "in", "Berlin", "."]
    assert data["arcs"] == [{"start": 0, "end": 5, "label": "Live_In", "dir": "right"}]
    # a relation whose argument nests in another: drawn at the longer span's word
    doc._.relations = doc._.relations + [{"head": [3, 4], "tail": [3, 5], "label": "Part_Of", "score": 1.0}]
    data, _ = relations_for_displacy(doc)
    assert "Emmanuel Macron" in [w["text"] for w in data["words"]]
    assert not any(a["label"] == "Part_Of" for a in data["arcs"])
    empty = spacy.blank("en").make_doc("")
    assert relations_for_displacy(empty)[0] == {"words": [], "arcs": []}


def test_clusters_for_displacy_one_colour_per_cluster_and_nested_mentions():
    doc = spacy.blank("en").make_doc("Her sister said she saw her sister 's dog .")
    doc.spans["coref_clusters_1"] = [Span(doc, 0, 1), Span(doc, 3, 4), Span(doc, 5, 6)]
    doc.spans["coref_clusters_2"] = [Span(doc, 0, 2), Span(doc, 5, 7)]
    doc.spans["coref_clusters_3"] = [Span(doc, 5, 9)]
    data, options = clusters_for_displacy(doc)
    assert options["colors"].keys() == {"1", "2", "3"} and len(set(options["colors"].values())) == 3
    assert {(s["start_token"], s["end_token"], s["label"]) for s in data["spans"]} == {
        (0, 1, "1"),
        (3, 4, "1"),
        (5, 6, "1"),
        (0, 2, "2"),
        (5, 7, "2"),
        (5, 9, "3"),
    }
    data, _ = clusters_for_displacy(doc, include_singletons=False)
    assert {s["label"] for s in data["spans"]} == {"1", "2"}
    html = displacy.render(data, style="span", manual=True, options=options, jupyter=False)
    assert "sister" in html
