"""displaCy pictures of span pairs, in displaCy's manual formats.

    from spacy import displacy
    data, options = relations_for_displacy(doc)   # after spanbert_rel
    displacy.render(data, style="dep", manual=True, options=options)
    data, options = clusters_for_displacy(doc)    # after spanbert_coref
    displacy.render(data, style="span", manual=True, options=options)

Relations are drawn as `dep` arcs: each argument of a relation (an entity, or
any span in `doc._.relations`) becomes one word of the picture, labelled with
its entity type, and every other token stays a word of its own. An argument
that overlaps a longer one is drawn at that one's word, and a relation whose
two arguments fall on one word is left out of the picture. Clusters are
drawn in `span` style, which allows the nested and overlapping mentions
coreference has: every mention is labelled with its cluster's number and each
cluster gets a colour of its own.
"""

from typing import Any, Dict, List, Tuple

from spacy.tokens import Doc

from .coref.scoring import DEFAULT_CLUSTER_PREFIX, cluster_keys
from .rel.records import RELATIONS_ATTR, ensure_relations_extension

# Distinct, readable colours for clusters; the cycle repeats after 12.
CLUSTER_COLOURS = [
    "#7aecec",
    "#bfeeb7",
    "#feca74",
    "#ff9561",
    "#aa9cfc",
    "#c887fb",
    "#9cc9cc",
    "#ffeb80",
    "#ff8197",
    "#f0d0ff",
    "#bfe1d9",
    "#e4e7d2",
]


def relations_for_displacy(doc: Doc, min_score: float = 0.0) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """displaCy `dep` data for the relations of `doc._.relations`.

    doc (Doc): A doc after `spanbert_rel` (or a reference doc with gold relations).
    min_score (float): Leave out relations scored below this.
    RETURNS (Tuple[Dict[str, Any], Dict[str, Any]]): The manual data
        (`words`, `arcs`) and options for `displacy.render(..., style="dep",
        manual=True)`.
    """
    ensure_relations_extension()
    records = [r for r in doc._.get(RELATIONS_ATTR) or [] if float(r.get("score", 1.0)) >= min_score]
    ent_labels = {(ent.start, ent.end): ent.label_ for ent in doc.ents}
    arguments = sorted({tuple(r[arg]) for r in records for arg in ("head", "tail")} | set(ent_labels))
    # word index of every token: an argument's tokens collapse to one word
    word_of: Dict[int, int] = {}
    words: List[Dict[str, str]] = []
    starts = dict(arguments)  # sorted by (start, end): the longest span at each start wins
    i = 0
    while i < len(doc):
        end = starts.get(i)
        if end is not None and all(t not in word_of for t in range(i, end)):
            label = ent_labels.get((i, end), "")
            words.append({"text": doc[i:end].text, "tag": label})
            for t in range(i, end):
                word_of[t] = len(words) - 1
            i = end
        else:
            if i not in word_of:
                words.append({"text": doc[i].text, "tag": ""})
                word_of[i] = len(words) - 1
            i += 1
    arcs = []
    for record in records:
        head, tail = word_of[record["head"][0]], word_of[record["tail"][0]]
        if head == tail:
            continue
        # displaCy draws from the left word to the right one; `dir` puts the arrowhead on the tail
        arcs.append(
            {
                "start": min(head, tail),
                "end": max(head, tail),
                "label": record["label"],
                "dir": "right" if tail > head else "left",
            }
        )
    return {"words": words, "arcs": arcs}, {"compact": True, "distance": 110, "offset_x": 30}


def clusters_for_displacy(
    doc: Doc, prefix: str = DEFAULT_CLUSTER_PREFIX, include_singletons: bool = True
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """displaCy `span` data for the coreference clusters of
    `doc.spans["{prefix}_1"]`, `..._2`, ...

    doc (Doc): A doc after `spanbert_coref` (or a converted reference doc).
    prefix (str): The clusters' span group prefix.
    include_singletons (bool): Draw clusters of one mention too.
    RETURNS (Tuple[Dict[str, Any], Dict[str, Any]]): The manual data
        (`text`, `tokens`, `spans`) and options (a colour per cluster) for
        `displacy.render(..., style="span", manual=True)`.
    """
    spans = []
    colours: Dict[str, str] = {}
    number = 0
    for key in cluster_keys(doc, prefix):
        group = doc.spans[key]
        if len(group) < 2 and not include_singletons:
            continue
        number += 1
        label = str(number)
        colours[label] = CLUSTER_COLOURS[(number - 1) % len(CLUSTER_COLOURS)]
        for span in group:
            spans.append({"start_token": span.start, "end_token": span.end, "label": label})
    spans.sort(key=lambda s: (s["start_token"], -s["end_token"]))
    data = {"text": doc.text, "tokens": [t.text for t in doc], "spans": spans}
    return data, {"colors": colours}
