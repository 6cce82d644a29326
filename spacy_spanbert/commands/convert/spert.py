"""The spert format: SpERT's JSON (CoNLL04, SciERC, ADE), a list of items
`{"tokens": [...], "entities": [{"type", "start", "end"}], "relations":
[{"type", "head", "tail"}]}` with exclusive entity ends and relation
arguments that index the item's entity list -> one Doc per item.

Every entity goes to the span group `doc.spans[spans_key]` (default
"spert_entities"), overlapping or not; `doc.ents` gets the same entities
when they do not overlap, else spaCy's `filter_spans` choice (longest
first), so a default `spanbert_rel` (which relates `doc.ents`) sees the
flat ones and one with `spans_key = "spert_entities"` sees them all. The
relations go to `doc._.relations` (save with `DocBin(store_user_data=True)`).
"""

from typing import Any, Dict, List, Optional

from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from ...errors import Errors
from ...rel.records import RELATIONS_ATTR, ensure_relations_extension, make_record
from ..text_input import read_json
from .common import ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp, token_doc

SPERT_SPANS_KEY = "spert_entities"


def read_spert(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    spans_key: str = SPERT_SPANS_KEY,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read a SpERT JSON file: one Doc per item (a sentence: its tokens form
    one sentence), entities to `doc.spans[spans_key]` and `doc.ents`,
    relations to `doc._.relations` as records over token offsets.

    path (PathLike): The `.json` file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    spans_key (str): The span group of all entities.
    limit (Optional[int]): Keep only the first `limit` items.
    encoding (str): The file's encoding.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_spert", limit)
    vocab = get_nlp(nlp_or_vocab).vocab
    ensure_relations_extension()
    data = read_json(path, encoding=encoding)
    if not isinstance(data, list):
        raise ConversionError(Errors.E510.format(path=path, kind=type(data).__name__))
    if limit is not None:
        data = data[:limit]
    return [_item_doc(vocab, item, index, path, spans_key) for index, item in enumerate(data)]


def _item_doc(vocab, item: Any, index: int, path: PathLike, spans_key: str) -> Doc:
    """The Doc of one item, checked."""
    tokens = item.get("tokens") if isinstance(item, dict) else None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise ConversionError(Errors.E511.format(path=path, index=index, value=_short(item)))
    doc = token_doc(vocab, tokens, sent_starts=[True] + [False] * (len(tokens) - 1))
    entities = [_entity(doc, e, i, index, path) for i, e in enumerate(_list(item, "entities", index, path))]
    relations = []
    for r, relation in enumerate(_list(item, "relations", index, path)):
        ok = isinstance(relation, dict) and isinstance(relation.get("type"), str) and relation["type"]
        ok = ok and all(_is_int(relation.get(arg)) for arg in ("head", "tail"))
        if not ok:
            raise ConversionError(Errors.E513.format(path=path, index=index, relation=r, value=relation))
        for arg in (relation["head"], relation["tail"]):
            if not 0 <= arg < len(entities):
                raise ConversionError(
                    Errors.E514.format(path=path, index=index, relation=r, value=relation, arg=arg, n=len(entities))
                )
        head, tail = entities[relation["head"]], entities[relation["tail"]]
        relations.append(make_record((head.start, head.end), (tail.start, tail.end), relation["type"]))
    doc.spans[spans_key] = entities
    doc.ents = filter_spans(entities)
    doc._.set(RELATIONS_ATTR, relations)
    return doc


def _list(item: Dict[str, Any], field: str, index: int, path: PathLike) -> List[Any]:
    """An item's 'entities' or 'relations' list (missing: empty)."""
    value = item.get(field, [])
    if not isinstance(value, list):
        raise ConversionError(Errors.E511.format(path=path, index=index, value=_short(item)))
    return value


def _entity(doc: Doc, entity: Any, i: int, index: int, path: PathLike) -> Span:
    ok = isinstance(entity, dict) and isinstance(entity.get("type"), str) and entity["type"]
    ok = ok and _is_int(entity.get("start")) and _is_int(entity.get("end"))
    if not ok or not 0 <= entity["start"] < entity["end"] <= len(doc):
        raise ConversionError(Errors.E512.format(path=path, index=index, entity=i, value=entity, n=len(doc)))
    return Span(doc, entity["start"], entity["end"], label=entity["type"])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
