"""The trec format: the TREC question classification file, `COARSE:fine
question` a line -> one-hot `doc.cats`."""

from typing import List, Optional, Tuple

from spacy.tokens import Doc

from ...errors import Errors
from ..text_input import iter_lines, non_blank
from .common import ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp, token_doc


def read_trec(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    fine: bool = False,
    limit: Optional[int] = None,
    encoding: str = "iso-8859-1",
) -> List[Doc]:
    """Read the TREC question classification file (ISO-8859-1): one
    `COARSE:fine question` a line, pre-tokenised (split on whitespace).
    `doc.cats` is one-hot over every label seen in the whole file (coarse
    labels, or `COARSE:fine` with `fine=True`), so every Doc has every key.

    path (PathLike): The file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    fine (bool): Use the `COARSE:fine` labels instead of the coarse ones.
    limit (Optional[int]): Keep only the first `limit` docs (the labels are
        still those of the whole file).
    encoding (str): The file's encoding.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_trec", limit)
    vocab = get_nlp(nlp_or_vocab).vocab
    rows: List[Tuple[str, List[str]]] = []
    for lineno, line in non_blank(iter_lines(path, encoding=encoding)):
        parts = line.split(None, 1)
        label = parts[0]
        coarse, colon, fine_label = label.partition(":")
        if not colon or not coarse or not fine_label:
            raise ConversionError(Errors.E140.format(path=path, line=lineno, label=label))
        if len(parts) < 2 or not parts[1].strip():
            raise ConversionError(Errors.E141.format(path=path, line=lineno, label=label))
        rows.append((label if fine else coarse, parts[1].split()))
    labels = sorted({label for label, _ in rows})
    if limit is not None:
        rows = rows[:limit]
    docs = []
    for label, words in rows:
        doc = token_doc(vocab, words)
        doc.cats = {name: 1.0 if name == label else 0.0 for name in labels}
        docs.append(doc)
    return docs
