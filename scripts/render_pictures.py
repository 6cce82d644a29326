"""Render the README's pictures of span pairs from trained pipelines:
relations as displaCy arcs (`docs/relations.svg`) and coreference clusters
in displaCy's span style (`docs/coref.svg`: displaCy's HTML wrapped in an
SVG so that an <img> tag shows it).

    python scripts/render_pictures.py --rel REL_PIPELINE --coref COREF_PIPELINE --output docs/

The texts are written for the pictures (no corpus text is copied); the
pipelines' own predictions are drawn, not gold annotations.
"""

import argparse
from pathlib import Path

REL_TEXT = "John Wilkes Booth , who shot Abraham Lincoln , was an actor from Maryland ."
COREF_TEXT = (
    "Mrs. Harlowe had lived in the old house on the hill for forty years . "
    "Her nephew came to see her every spring , and each time he found her "
    "sitting by the window . She told him that the house was too large for "
    "one woman , but she would not leave it ."
)


def render_relations(model: Path, output: Path) -> Path:
    import spacy
    from spacy import displacy

    from spacy_spanbert import relations_for_displacy

    nlp = spacy.load(model)
    data, options = relations_for_displacy(nlp(REL_TEXT))
    path = output / "relations.svg"
    path.write_text(displacy.render(data, style="dep", manual=True, options=options, jupyter=False), encoding="utf8")
    return path


def render_clusters(model: Path, output: Path) -> Path:
    import spacy
    from spacy import displacy

    from spacy_spanbert import clusters_for_displacy

    nlp = spacy.load(model)
    data, options = clusters_for_displacy(nlp(COREF_TEXT), include_singletons=False)
    markup = displacy.render(data, style="span", manual=True, options=options, jupyter=False)
    # GitHub shows an SVG in an <img> tag but not raw HTML: wrap the markup
    # in a foreignObject so the README can embed it like the other pictures.
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="330">'
        '<foreignObject width="100%" height="100%"><div xmlns="http://www.w3.org/1999/xhtml" '
        f'style="font-family: sans-serif">{markup}</div></foreignObject></svg>'
    )
    path = output / "coref.svg"
    path.write_text(svg, encoding="utf8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rel", type=Path, help="a trained pipeline with spanbert_ner + spanbert_rel")
    parser.add_argument("--coref", type=Path, help="a trained pipeline with spanbert_coref")
    parser.add_argument("--output", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    if args.rel:
        print(render_relations(args.rel, args.output))
    if args.coref:
        print(render_clusters(args.coref, args.output))


if __name__ == "__main__":
    main()
