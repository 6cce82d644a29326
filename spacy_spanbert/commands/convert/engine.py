"""The conversion both command shells run: check the options against the
format, read the input, drop docs whose text is in another `.spacy` file,
hold out the last docs as a dev set, write `.spacy` files and say what was
written. Importable and tested without typer or argparse."""

from pathlib import Path
from typing import List, NamedTuple, Optional, Set, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ...errors import Errors, check_positive
from ..text_input import check_encoding
from .common import DEFAULT_SPANS_KEY, QA_SPANS_KEY, ConversionError, PathLike
from .conll import read_conll
from .conll2012 import read_conll2012
from .goemotions import read_goemotions
from .litbank import read_litbank
from .prodigy import read_prodigy
from .spert import SPERT_SPANS_KEY, read_spert
from .squad import SquadStats, read_squad
from .summary import format_squad_summary, format_summary, summarize
from .trec import read_trec

FORMATS = ("conll", "conll2012", "litbank", "prodigy", "trec", "goemotions", "squad", "spert")
DEFAULT_ENCODINGS = {
    "conll": "utf-8",
    "conll2012": "utf-8",
    "litbank": "utf-8",
    "prodigy": "utf-8",
    "trec": "iso-8859-1",
    "goemotions": "utf-8",
    "squad": "utf-8",
    "spert": "utf-8",
}
# option -> (its command-line flag, the formats it applies to)
FORMAT_OPTIONS = {
    "n_sents": ("--n-sents", ("conll", "litbank")),
    "spans_key": ("--spans-key", ("litbank", "squad", "spert")),
    "fine": ("--fine", ("trec",)),
    "labels": ("--labels", ("goemotions",)),
}


class OptionError(ValueError):
    """Options that do not fit the format or each other (a usage error: the
    command shells exit with status 2)."""


class ConvertResult(NamedTuple):
    """What `convert` wrote: the docs in the output file, the docs in the dev
    file, how many docs were dropped for --drop-texts-in, and the summary
    the commands print."""

    docs: List[Doc]
    dev: List[Doc]
    n_dropped: int
    summary: str


def convert(
    fmt: str,
    input_path: PathLike,
    output_path: PathLike,
    *,
    lang: str = "en",
    limit: Optional[int] = None,
    encoding: Optional[str] = None,
    n_sents: Optional[int] = None,
    spans_key: Optional[str] = None,
    fine: bool = False,
    labels: Optional[PathLike] = None,
    dev_output: Optional[PathLike] = None,
    dev_last: Optional[int] = None,
    drop_texts_in: Optional[PathLike] = None,
) -> ConvertResult:
    """Convert a corpus into a `.spacy` file (and a dev `.spacy` file).

    fmt (str): One of FORMATS.
    input_path (PathLike): The input file (litbank, conll2012: a folder or one file).
    output_path (PathLike): The `.spacy` file to write; folders are created.
    lang (str): The language of the blank pipeline that tokenizes.
    limit (Optional[int]): Keep only the first `limit` docs.
    encoding (Optional[str]): The input's encoding; None for the format's
        default (iso-8859-1 for trec, utf-8 otherwise).
    n_sents (Optional[int]): conll: sentences per doc (default 1); litbank:
        split each file into docs of `n_sents` sentences.
    spans_key (Optional[str]): litbank: the span group of all layers
        (default DEFAULT_SPANS_KEY); squad: of the answers (QA_SPANS_KEY).
    fine (bool): trec: COARSE:fine labels instead of coarse ones.
    labels (Optional[PathLike]): goemotions (required): the labels file.
    dev_output (Optional[PathLike]): Where the last `dev_last` docs go.
    dev_last (Optional[int]): How many final docs go to `dev_output`.
    drop_texts_in (Optional[PathLike]): Drop docs whose text also occurs in
        this `.spacy` file.
    RETURNS (ConvertResult): What was written, and the summary.
    """
    given = {"n_sents": n_sents, "spans_key": spans_key, "fine": fine, "labels": labels}
    _check_options(fmt, given, dev_output=dev_output, dev_last=dev_last)
    nlp = _blank(lang)
    if encoding is not None:
        _check_encoding(encoding)
    read_options = {"limit": limit, "encoding": encoding or DEFAULT_ENCODINGS[fmt], **given}
    docs, stats = _read(fmt, input_path, nlp, **read_options)
    if not docs:
        raise ConversionError(Errors.E160.format(path=input_path))
    n_dropped = 0
    if drop_texts_in is not None:
        docs, n_dropped = drop_texts(docs, texts_in(drop_texts_in))
        if not docs:
            raise ConversionError(Errors.E161.format(path=input_path, other=drop_texts_in))
    dev: List[Doc] = []
    if dev_last is not None:
        if dev_last >= len(docs):
            raise ConversionError(Errors.E162.format(path=input_path, n=dev_last, n_docs=len(docs)))
        docs, dev = docs[:-dev_last], docs[-dev_last:]
    store_user_data = fmt in ("squad", "spert")  # doc._.questions, doc._.relations
    _write(docs, output_path, store_user_data)
    if dev:
        _write(dev, dev_output, store_user_data)
    default_key = SPERT_SPANS_KEY if fmt == "spert" else DEFAULT_SPANS_KEY
    summary = _summary(docs, dev, stats, output_path, dev_output, spans_key or default_key)
    if n_dropped:
        summary = f"Dropped {n_dropped} docs whose text occurs in {drop_texts_in}\n{summary}"
    return ConvertResult(docs, dev, n_dropped, summary)


def _summary(
    docs: List[Doc],
    dev: List[Doc],
    stats: Optional[SquadStats],
    output_path: PathLike,
    dev_output: Optional[PathLike],
    spans_key: str,
) -> str:
    """What was written where: the squad summary of all docs, or the
    summary of the output file and of the dev file."""
    if stats is not None:
        return format_squad_summary(docs + dev, stats, str(output_path))
    lines = [format_summary(summarize(docs, spans_key), str(output_path), spans_key)]
    if dev:
        lines.append(format_summary(summarize(dev, spans_key), str(dev_output), spans_key))
    return "\n".join(lines)


def _check_options(fmt: str, given: dict, *, dev_output: Optional[PathLike], dev_last: Optional[int]) -> None:
    """Raise OptionError for options the format does not take or that go together."""
    if fmt not in FORMATS:
        raise OptionError(Errors.E165.format(fmt=fmt, formats=", ".join(FORMATS)))
    for name, value in given.items():
        flag, formats = FORMAT_OPTIONS[name]
        if value is not None and value is not False and fmt not in formats:
            raise OptionError(Errors.E170.format(flag=flag, formats=" or ".join(formats)))
    if fmt == "goemotions" and given["labels"] is None:
        raise OptionError(Errors.E171)
    if (dev_output is None) != (dev_last is None):
        raise OptionError(Errors.E172)
    if dev_last is not None:
        check_positive("convert", "dev_last", dev_last)


def _blank(lang: str) -> Language:
    """A blank pipeline of `lang`; an unknown language is an OptionError."""
    try:
        return spacy.blank(lang)
    except ImportError as err:
        raise OptionError(Errors.E173.format(lang=lang, reason=err)) from None


def _check_encoding(encoding: str) -> None:
    """Raise OptionError if Python has no codec called `encoding`."""
    try:
        check_encoding(encoding)
    except ValueError as err:
        raise OptionError(str(err)) from None


def _read(
    fmt: str,
    path: PathLike,
    nlp: Language,
    *,
    limit: Optional[int],
    encoding: str,
    n_sents: Optional[int],
    spans_key: Optional[str],
    fine: bool,
    labels: Optional[PathLike],
) -> Tuple[List[Doc], Optional[SquadStats]]:
    """The docs of the input (and, for squad, what read_squad found)."""
    common = {"limit": limit, "encoding": encoding}
    if fmt == "conll":
        return read_conll(path, nlp, n_sents=1 if n_sents is None else n_sents, **common), None
    if fmt == "conll2012":
        return read_conll2012(path, nlp, **common), None
    if fmt == "litbank":
        return read_litbank(path, nlp, spans_key=spans_key or DEFAULT_SPANS_KEY, n_sents=n_sents, **common), None
    if fmt == "prodigy":
        return read_prodigy(path, nlp, **common), None
    if fmt == "trec":
        return read_trec(path, nlp, fine=fine, **common), None
    if fmt == "squad":
        return read_squad(path, nlp, spans_key=spans_key or QA_SPANS_KEY, **common)
    if fmt == "spert":
        return read_spert(path, nlp, spans_key=spans_key or SPERT_SPANS_KEY, **common), None
    return read_goemotions(path, nlp, labels=labels, **common), None


def texts_in(path: PathLike) -> Set[str]:
    """The texts of the docs in a .spacy file.

    path (PathLike): A .spacy file (DocBin).
    RETURNS (Set[str]): The texts of its docs.
    """
    try:
        doc_bin = DocBin().from_disk(path)
    except Exception as err:  # srsly, msgpack and zlib raise their own error types
        raise ConversionError(Errors.E164.format(path=path, reason=err)) from None
    return {doc.text for doc in doc_bin.get_docs(Vocab())}


def drop_texts(docs: List[Doc], texts: Set[str]) -> Tuple[List[Doc], int]:
    """Drop docs whose text is in `texts`.

    docs (List[Doc]): The docs.
    texts (Set[str]): The texts to drop.
    RETURNS (Tuple[List[Doc], int]): The kept docs and the number dropped.
    """
    kept = [doc for doc in docs if doc.text not in texts]
    return kept, len(docs) - len(kept)


def _write(docs: List[Doc], output: PathLike, store_user_data: bool) -> None:
    """Write `docs` to a `.spacy` file, creating its folder."""
    out = Path(output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        DocBin(docs=docs, store_user_data=store_user_data).to_disk(out)
    except OSError as err:
        raise ConversionError(Errors.E163.format(path=output, reason=err.strerror or err)) from None
