"""The goemotions format: GoEmotions' `text<TAB>ids<TAB>comment id` lines
and a labels file -> multi-label `doc.cats`."""

from pathlib import Path
from typing import List, Optional, Sequence, Union

from spacy.tokens import Doc

from ...errors import Errors
from ..text_input import iter_lines, non_blank
from .common import ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp


def read_labels(path: PathLike, encoding: str = "utf-8") -> List[str]:
    """Label names, one a line (the line index is the id). Trailing blank
    lines are ignored; blank or duplicate names elsewhere are errors.

    path (PathLike): The labels file, or a `.gz` of it.
    encoding (str): Its encoding.
    RETURNS (List[str]): The names, in id order.
    """
    lines = list(iter_lines(path, encoding=encoding))
    while lines and not lines[-1][1].strip():
        lines.pop()
    labels: List[str] = []
    for lineno, line in lines:
        name = line.strip()
        if not name:
            raise ConversionError(Errors.E142.format(path=path, line=lineno))
        if name in labels:
            raise ConversionError(Errors.E143.format(path=path, line=lineno, name=name))
        labels.append(name)
    if not labels:
        raise ConversionError(Errors.E144.format(path=path))
    return labels


def read_goemotions(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    labels: Union[PathLike, Sequence[str]],
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> List[Doc]:
    """Read GoEmotions: no header, `text<TAB>ids<TAB>comment id` a line, ids
    comma-separated indices into `labels` (a labels file or a list of names).
    The text is tokenised with the pipeline's tokenizer; `doc.cats` is
    multi-label with every label key (1.0 / 0.0).

    path (PathLike): The `.tsv` file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    labels (Union[PathLike, Sequence[str]]): A labels file (see `read_labels`)
        or the label names in id order.
    limit (Optional[int]): Keep only the first `limit` docs.
    encoding (str): The file's encoding.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_goemotions", limit)
    nlp = get_nlp(nlp_or_vocab)
    names = read_labels(labels) if isinstance(labels, (str, Path)) else list(labels)
    if not names:
        raise ValueError(Errors.E145)
    docs: List[Doc] = []
    for lineno, line in non_blank(iter_lines(path, encoding=encoding)):
        parts = line.split("\t")
        if len(parts) != 3:
            raise ConversionError(Errors.E146.format(path=path, line=lineno, found=len(parts)))
        text, ids, _comment_id = parts
        if not text.strip():
            raise ConversionError(Errors.E147.format(path=path, line=lineno, ids=ids))
        if not ids.strip():
            raise ConversionError(Errors.E148.format(path=path, line=lineno))
        on = set()
        for raw in ids.split(","):
            raw = raw.strip()
            if not raw.isdigit() or int(raw) >= len(names):
                raise ConversionError(Errors.E149.format(path=path, line=lineno, id=raw, last=len(names) - 1))
            on.add(names[int(raw)])
        doc = nlp.make_doc(text)
        doc.cats = {name: 1.0 if name in on else 0.0 for name in names}
        docs.append(doc)
        if limit is not None and len(docs) >= limit:
            break
    return docs
