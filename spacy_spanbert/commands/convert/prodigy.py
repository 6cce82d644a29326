"""The prodigy format: Prodigy-style JSONL. NER rows (`spans`) -> `doc.ents`;
binary (`label` + `answer`), choice (`options` + `accept`) and `cats` rows
-> `doc.cats`."""

from typing import Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ...errors import Errors
from ..text_input import iter_jsonl
from .common import ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp

ANSWERS = ("accept", "reject", "ignore")
TokenOffsets = List[Tuple[int, int]]


def read_prodigy(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read Prodigy-style JSONL (blank lines skipped). Per row:

    - `cats` (a dict label -> number): `doc.cats` as given.
    - `options` without `spans` (choice interface, e.g. textcat.manual):
      `doc.cats` has 1.0 for each option id in `accept`, 0.0 for the others;
      rows whose answer is not "accept" are skipped (rows without an answer
      are kept).
    - `label` without `spans` (binary textcat): `doc.cats[label]` is 1.0 for
      answer "accept" (or no answer), 0.0 for "reject"; "ignore" rows skipped.
    - otherwise NER: `spans` (char `start`/`end`, or inclusive
      `token_start`/`token_end` when the row has `tokens`) become `doc.ents`;
      rows whose answer is not "accept" are skipped (rows without an answer
      are kept). A row without spans gives a Doc with no entities (all O).

    The row's `tokens` (with `ws`, or `start`/`end` to infer spacing) are used
    when present, so offsets match; otherwise the text is tokenised with the
    pipeline's tokenizer and char offsets are expanded to token boundaries.

    path (PathLike): The `.jsonl` file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    limit (Optional[int]): Keep only the first `limit` docs.
    encoding (str): The file's encoding.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_prodigy", limit)
    nlp = get_nlp(nlp_or_vocab)
    docs: List[Doc] = []
    for lineno, row in iter_jsonl(path, encoding=encoding):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise ConversionError(Errors.E120.format(where=where, kind=type(row).__name__))
        doc = _prodigy_row(row, nlp, where)
        if doc is not None:
            docs.append(doc)
            if limit is not None and len(docs) >= limit:
                break
    return docs


def _row_kind(row: dict) -> str:
    """What a row annotates: "cats", "choice", "binary" or "ner"."""
    if "cats" in row:
        return "cats"
    if "options" in row and "spans" not in row:
        return "choice"
    if "label" in row and "spans" not in row:
        return "binary"
    return "ner"


def _prodigy_row(row: dict, nlp: Language, where: str) -> Optional[Doc]:
    """The Doc of a row, or None for a row that is skipped."""
    answer = row.get("answer")
    if answer is not None and answer not in ANSWERS:
        raise ConversionError(Errors.E121.format(where=where, answer=answer))
    kind = _row_kind(row)
    if answer == "ignore" or (answer == "reject" and kind != "binary"):
        return None
    doc, token_offsets = _prodigy_doc(row, nlp, where)
    if kind == "cats":
        doc.cats = _prodigy_cats(row, where)
    elif kind == "choice":
        doc.cats = _prodigy_choice(row, where)
    elif kind == "binary":
        label = row["label"]
        if not isinstance(label, str) or not label:
            raise ConversionError(Errors.E123.format(where=where))
        doc.cats = {label: 0.0 if answer == "reject" else 1.0}
    else:
        spans = row.get("spans") or []
        if not isinstance(spans, list):
            raise ConversionError(Errors.E124.format(where=where))
        ents = {}
        for i, span in enumerate(spans):
            ent = _prodigy_span(doc, span, token_offsets, f"{where}: span {i}")
            ents[(ent.start, ent.end, ent.label_)] = ent
        try:
            doc.ents = sorted(ents.values(), key=lambda span: (span.start, span.end))
        except ValueError as err:
            raise ConversionError(Errors.E125.format(where=where, reason=err)) from None
    return doc


def _prodigy_cats(row: dict, where: str) -> Dict[str, float]:
    """`doc.cats` of a row with `cats`, as given."""
    cats = row["cats"]
    if not isinstance(cats, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in cats.items()
    ):
        raise ConversionError(Errors.E122.format(where=where))
    return {label: float(value) for label, value in cats.items()}


def _prodigy_choice(row: dict, where: str) -> Dict[str, float]:
    """`doc.cats` of a choice row (Prodigy's `choice` interface, e.g.
    textcat.manual with several labels): 1.0 for each accepted option id,
    0.0 for the others."""
    options = row["options"]
    if (
        not isinstance(options, list)
        or not options
        or not all(
            isinstance(o, dict) and isinstance(o.get("id"), (str, int)) and not isinstance(o.get("id"), bool)
            for o in options
        )
    ):
        raise ConversionError(Errors.E126.format(where=where))
    accept = row.get("accept", [])
    if not isinstance(accept, list):
        raise ConversionError(Errors.E127.format(where=where))
    ids = [str(o["id"]) for o in options]
    unknown = [a for a in accept if str(a) not in ids]
    if unknown:
        raise ConversionError(Errors.E128.format(where=where, id=unknown[0], ids=ids))
    accepted = {str(a) for a in accept}
    return {i: float(i in accepted) for i in ids}


def _prodigy_doc(row: dict, nlp: Language, where: str) -> Tuple[Doc, Optional[TokenOffsets]]:
    """The row's Doc and, if built from `tokens`, each token's char offsets."""
    text = row.get("text")
    tokens = row.get("tokens")
    if tokens is None:
        if not isinstance(text, str) or not text.strip():
            raise ConversionError(Errors.E129.format(where=where))
        return nlp.make_doc(text), None
    if not isinstance(tokens, list) or not tokens:
        raise ConversionError(Errors.E130.format(where=where))
    words: List[str] = []
    for i, tok in enumerate(tokens):
        if not isinstance(tok, dict) or not isinstance(tok.get("text"), str) or not tok["text"]:
            raise ConversionError(Errors.E131.format(where=where, i=i))
        words.append(tok["text"])
    has_offsets = all(isinstance(t.get("start"), int) and isinstance(t.get("end"), int) for t in tokens)
    spaces: List[bool] = []
    for i, tok in enumerate(tokens):
        if "ws" in tok:
            spaces.append(bool(tok["ws"]))
        elif i + 1 == len(tokens):
            spaces.append(False)
        elif has_offsets:
            spaces.append(tokens[i + 1]["start"] > tok["end"])
        else:
            spaces.append(True)
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    if has_offsets:
        return doc, [(t["start"], t["end"]) for t in tokens]
    return doc, [(t.idx, t.idx + len(t)) for t in doc]


def _prodigy_span(doc: Doc, span: object, token_offsets: Optional[TokenOffsets], where: str) -> Span:
    """The entity of one of a row's `spans`."""
    if not isinstance(span, dict):
        raise ConversionError(Errors.E120.format(where=where, kind=type(span).__name__))
    label = span.get("label")
    if not isinstance(label, str) or not label:
        raise ConversionError(Errors.E132.format(where=where))
    token_start, token_end = span.get("token_start"), span.get("token_end")
    if token_offsets is not None and isinstance(token_start, int) and isinstance(token_end, int):
        if not 0 <= token_start <= token_end < len(doc):
            raise ConversionError(Errors.E133.format(where=where, start=token_start, end=token_end, n=len(doc)))
        return Span(doc, token_start, token_end + 1, label=label)
    start, end = span.get("start"), span.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        raise ConversionError(Errors.E134.format(where=where))
    if not 0 <= start < end:
        raise ConversionError(Errors.E135.format(where=where, start=start, end=end))
    if token_offsets is None:
        if end > len(doc.text):
            raise ConversionError(Errors.E136.format(where=where, start=start, end=end, n=len(doc.text)))
        ent = doc.char_span(start, end, label=label, alignment_mode="expand")
    else:
        covered = [i for i, (s, e) in enumerate(token_offsets) if s < end and e > start]
        ent = Span(doc, covered[0], covered[-1] + 1, label=label) if covered else None
    if ent is None or len(ent) == 0:
        raise ConversionError(Errors.E137.format(where=where, start=start, end=end))
    return ent
