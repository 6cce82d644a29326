"""The two shells of the converter, with the same options: `spacy spanbert
convert` (typer, on spaCy's CLI) and `python -m spacy_spanbert.convert`
(argparse, `main`). Both parse, call `engine.convert` and report: malformed
input exits with status 1 and a `path:line:` message on stderr, options that
do not fit the format with status 2."""

import argparse
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from spacy.cli._util import Arg, Opt

from ...errors import Errors
from ..app import spanbert_cli
from .common import DEFAULT_SPANS_KEY, QA_SPANS_KEY, ConversionError
from .engine import FORMATS, OptionError, convert

DESCRIPTION = "Convert an annotated corpus into a spaCy DocBin (.spacy) file."
EPILOG = (
    "formats: conll (token ... tag, BIO/IOB1/IOB2/BIOES/BILUO -> doc.ents); "
    "conll2012 (folder of CoNLL-2012 .conll files or one file, one doc per document part: "
    "coreference chains -> doc.spans['coref_clusters_N']); "
    "litbank (folder of LitBank .tsv -> doc.spans[KEY] + doc.ents); "
    "prodigy (JSONL: spans -> doc.ents, label+answer, options+accept or cats -> doc.cats); "
    "trec (ISO-8859-1 'COARSE:fine question' -> one-hot doc.cats); "
    "goemotions (text<TAB>ids<TAB>id with --labels -> multi-label doc.cats); "
    "spert (SpERT JSON: tokens, entities, relations -> doc.spans[KEY], default 'spert_entities', "
    "doc.ents (non-overlapping) and doc._.relations); "
    f"squad (SQuAD 1.1/2.0 JSON, one doc per paragraph -> doc._.questions + "
    f"doc.spans[KEY], default {QA_SPANS_KEY!r}). "
    "A .gz input is read decompressed. "
    "Malformed input exits with status 1 and a path:line message."
)
HELP = {
    "format": "input format",
    "input": "input file, or a .gz of it (litbank: a folder of .tsv or .tsv.gz files, or one file; "
    "conll2012: a folder of .conll or .conll.gz files, or one file)",
    "output": "output .spacy file",
    "lang": "language of the blank pipeline (default: en)",
    "limit": "keep only the first N docs",
    "encoding": "input encoding (default: iso-8859-1 for trec, utf-8 otherwise)",
    "n_sents": "conll: sentences per doc (default: 1); litbank: split each "
    "file into docs of N sentences (default: one doc per file)",
    "spans_key": f"litbank: doc.spans key for all layers (default: {DEFAULT_SPANS_KEY}); "
    f"squad: key of the answers (default: {QA_SPANS_KEY}); spert: key of all entities (default: spert_entities)",
    "fine": "trec: use COARSE:fine labels instead of coarse ones",
    "labels": "goemotions (required): label names, one a line (id = line index)",
    "dev_output": "write the last --dev-last docs here instead of to OUTPUT",
    "dev_last": "number of final docs held out into --dev-output",
    "drop_texts_in": "drop docs whose text also occurs in this .spacy file (e.g. a "
    "dev set that shares rows with the converted training set)",
}
Format = Enum("Format", {name: name for name in FORMATS}, type=str)


@spanbert_cli.command("convert", help=f"{DESCRIPTION}\n\n{EPILOG}")
def convert_cli(
    # fmt: off
    fmt: Format = Arg(..., metavar="FORMAT", help=HELP["format"], show_default=False),
    input_path: Path = Arg(..., metavar="INPUT", help=HELP["input"], show_default=False),
    output_path: Path = Arg(..., metavar="OUTPUT", help=HELP["output"], show_default=False),
    lang: str = Opt("en", "--lang", metavar="LANG", help=HELP["lang"], show_default=False),
    limit: Optional[int] = Opt(None, "--limit", min=1, metavar="N", help=HELP["limit"]),
    encoding: Optional[str] = Opt(None, "--encoding", metavar="ENCODING", help=HELP["encoding"]),
    n_sents: Optional[int] = Opt(None, "--n-sents", min=1, metavar="N", help=HELP["n_sents"]),
    spans_key: Optional[str] = Opt(None, "--spans-key", metavar="KEY", help=HELP["spans_key"]),
    fine: bool = Opt(False, "--fine", help=HELP["fine"]),
    labels: Optional[Path] = Opt(None, "--labels", metavar="FILE", help=HELP["labels"]),
    dev_output: Optional[Path] = Opt(None, "--dev-output", metavar="PATH", help=HELP["dev_output"]),
    dev_last: Optional[int] = Opt(None, "--dev-last", min=1, metavar="N", help=HELP["dev_last"]),
    drop_texts_in: Optional[Path] = Opt(None, "--drop-texts-in", metavar="FILE", help=HELP["drop_texts_in"]),
    # fmt: on
) -> None:
    """`spacy spanbert convert`: the typer shell over `engine.convert`."""
    try:
        result = convert(
            fmt.value,
            input_path,
            output_path,
            lang=lang,
            limit=limit,
            encoding=encoding,
            n_sents=n_sents,
            spans_key=spans_key,
            fine=fine,
            labels=labels,
            dev_output=dev_output,
            dev_last=dev_last,
            drop_texts_in=drop_texts_in,
        )
    except OptionError as err:
        raise typer.BadParameter(str(err)) from None
    except ConversionError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(result.summary)


def main(argv: Optional[List[str]] = None) -> int:
    """Run `python -m spacy_spanbert.convert`.

    argv (Optional[List[str]]): The arguments; None for sys.argv[1:].
    RETURNS (int): 0, or 1 on malformed input (message on stderr). Usage
        errors exit with status 2 (argparse).
    """
    parser = make_parser()
    args = parser.parse_args(argv)
    options = {name: value for name, value in vars(args).items() if name not in ("format", "input", "output")}
    try:
        result = convert(args.format, args.input, args.output, **options)
    except OptionError as err:
        parser.error(str(err))
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(result.summary)
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The argparse parser of `python -m spacy_spanbert.convert`."""
    parser = argparse.ArgumentParser(prog="python -m spacy_spanbert.convert", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("format", choices=FORMATS, help=HELP["format"])
    parser.add_argument("input", help=HELP["input"])
    parser.add_argument("output", help=HELP["output"])
    parser.add_argument("--lang", default="en", help=HELP["lang"])
    parser.add_argument("--limit", type=_positive_int, default=None, metavar="N", help=HELP["limit"])
    parser.add_argument("--encoding", default=None, help=HELP["encoding"])
    parser.add_argument("--n-sents", type=_positive_int, default=None, metavar="N", help=HELP["n_sents"])
    parser.add_argument("--spans-key", default=None, metavar="KEY", help=HELP["spans_key"])
    parser.add_argument("--fine", action="store_true", help=HELP["fine"])
    parser.add_argument("--labels", default=None, metavar="FILE", help=HELP["labels"])
    parser.add_argument("--dev-output", default=None, metavar="PATH", help=HELP["dev_output"])
    parser.add_argument("--dev-last", type=_positive_int, default=None, metavar="N", help=HELP["dev_last"])
    parser.add_argument("--drop-texts-in", default=None, metavar="FILE", help=HELP["drop_texts_in"])
    return parser


def _positive_int(value: str) -> int:
    """An argparse type: a positive integer."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(Errors.E174.format(value=value))
    return number
