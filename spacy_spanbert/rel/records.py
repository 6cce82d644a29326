"""The relation contract: `doc._.relations` is a list of msgpack-safe records
`{"head": [start, end], "tail": [start, end], "label": str, "score": float}`
over token offsets (ends exclusive), so a `DocBin(store_user_data=True)`
keeps them; `get_relations` gives them as Spans."""

from typing import Any, Dict, List, Tuple

from spacy.tokens import Doc, Span

from ..errors import Errors

RELATIONS_ATTR = "relations"
# (head offsets, tail offsets, label)
Triple = Tuple[Tuple[int, int], Tuple[int, int], str]


def ensure_relations_extension() -> None:
    """Register `Doc._.relations` (default None) unless it exists."""
    if not Doc.has_extension(RELATIONS_ATTR):
        Doc.set_extension(RELATIONS_ATTR, default=None)


def make_record(head: Tuple[int, int], tail: Tuple[int, int], label: str, score: float = 1.0) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): One msgpack-safe relation record."""
    return {
        "head": [int(head[0]), int(head[1])],
        "tail": [int(tail[0]), int(tail[1])],
        "label": label,
        "score": float(score),
    }


def read_triples(doc: Doc, where: str) -> List[Triple]:
    """The relations of a doc as (head, tail, label) offsets, checked.

    doc (Doc): A doc whose `doc._.relations` is None or a list of records
        (a tuple after a DocBin round trip).
    where (str): Names the reader in error messages.
    RETURNS (List[Triple]): The relations, in record order.
    """
    ensure_relations_extension()
    records = doc._.get(RELATIONS_ATTR)
    if records is None:
        return []
    if not isinstance(records, (list, tuple)):  # a DocBin gives back tuples
        raise ValueError(Errors.E504.format(name=where, n_tokens=len(doc), value=records))
    return [_triple(doc, record, where) for record in records]


def _triple(doc: Doc, record: Any, where: str) -> Triple:
    ok = isinstance(record, dict) and isinstance(record.get("label"), str) and record["label"]
    args = [record.get(arg) for arg in ("head", "tail")] if ok else []
    for arg in args:
        ok = ok and isinstance(arg, (list, tuple)) and len(arg) == 2
        ok = ok and all(isinstance(i, int) and not isinstance(i, bool) for i in arg)
        ok = ok and 0 <= arg[0] < arg[1] <= len(doc)
    if not ok:
        raise ValueError(Errors.E504.format(name=where, n_tokens=len(doc), value=record))
    return (tuple(args[0]), tuple(args[1]), record["label"])  # type: ignore[return-value]


def get_relations(doc: Doc) -> List[Tuple[Span, Span, str, float]]:
    """The relations of a processed doc as Spans: an argument that is one of
    `doc.ents` is that entity (with its label), any other a plain Span.

    doc (Doc): A doc with `doc._.relations`.
    RETURNS (List[Tuple[Span, Span, str, float]]): (head, tail, label, score).
    """
    ensure_relations_extension()
    ents = {(ent.start, ent.end): ent for ent in doc.ents}
    out = []
    for record in doc._.get(RELATIONS_ATTR) or []:
        head, tail = (tuple(record[arg]) for arg in ("head", "tail"))
        out.append(
            (
                ents.get(head) or Span(doc, head[0], head[1]),
                ents.get(tail) or Span(doc, tail[0], tail[1]),
                record["label"],
                float(record.get("score", 1.0)),
            )
        )
    return out
