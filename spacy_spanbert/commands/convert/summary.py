"""What a conversion wrote, as counts and as the text the commands print:
docs, tokens and per-label counts of entities, spans and categories (or, for
squad, questions and answers)."""

from collections import Counter
from typing import Dict, Iterable, List

from spacy.tokens import Doc

from .common import DEFAULT_SPANS_KEY
from .squad import SquadStats


def summarize(docs: Iterable[Doc], spans_key: str = DEFAULT_SPANS_KEY) -> Dict[str, object]:
    """Counts: docs, tokens, entities / spans / positive cats per label.

    docs (Iterable[Doc]): The docs.
    spans_key (str): The span group to count.
    RETURNS (Dict[str, object]): "docs", "tokens", "cat_docs" (docs with
        cats) and the Counters "ents", "spans" and "cats".
    """
    n_docs = n_tokens = 0
    ents: Counter = Counter()
    spans: Counter = Counter()
    cats: Counter = Counter()
    cat_docs = 0
    for doc in docs:
        n_docs += 1
        n_tokens += len(doc)
        ents.update(ent.label_ for ent in doc.ents)
        if spans_key in doc.spans:
            spans.update(span.label_ for span in doc.spans[spans_key])
        if doc.cats:
            cat_docs += 1
            for label, value in doc.cats.items():
                cats[label] += 0
                if value >= 0.5:
                    cats[label] += 1
    return {
        "docs": n_docs,
        "tokens": n_tokens,
        "ents": ents,
        "spans": spans,
        "cats": cats,
        "cat_docs": cat_docs,
    }


def format_summary(summary: Dict[str, object], output: str, spans_key: str) -> str:
    """The text of a `summarize` result: what was written to `output`, and a
    table of counts per label for entities, spans and categories.

    summary (Dict[str, object]): The result of `summarize`.
    output (str): The file written.
    spans_key (str): The span group counted.
    RETURNS (str): The lines of the summary.
    """
    lines = [_wrote(summary["docs"], summary["tokens"], output)]
    ents, spans, cats = summary["ents"], summary["spans"], summary["cats"]
    if ents or not (spans or cats):
        lines += _table(f"Entities (doc.ents): {sum(ents.values())}", ents)
    if spans:
        lines += _table(f"Spans (doc.spans[{spans_key!r}]): {sum(spans.values())}", spans)
    if cats:
        lines += _table(
            f"Categories (docs with the label >= 0.5, of {summary['cat_docs']} docs with cats)",
            cats,
        )
    return "\n".join(lines)


def format_squad_summary(docs: List[Doc], stats: SquadStats, output: str) -> str:
    """The text of what a squad conversion wrote to `output`.

    docs (List[Doc]): The docs read.
    stats (SquadStats): What `read_squad` found.
    output (str): The file written.
    RETURNS (str): The lines of the summary.
    """
    return "\n".join(
        [
            _wrote(len(docs), sum(len(doc) for doc in docs), output),
            f"Questions: {stats.questions} ({stats.unanswerable} unanswerable); "
            f"answers: {stats.answers}, {stats.expanded} of them expanded to token boundaries",
        ]
    )


def _wrote(n_docs: int, n_tokens: int, output: str) -> str:
    return f"Wrote {_count(n_docs, 'doc')} ({_count(n_tokens, 'token')}) to {output}"


def _table(title: str, counts: Counter) -> List[str]:
    """A title and a table of counts per label, most frequent first."""
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    width = max([len("label")] + [len(label) for label, _ in rows])
    lines = [title, f"  {'label':<{width}}  {'count':>7}"]
    lines += [f"  {label:<{width}}  {count:>7}" for label, count in rows]
    return lines


def _count(n: int, noun: str) -> str:
    """ "1 doc", "2 docs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
