"""Convert annotated corpora into spaCy `DocBin` files.

    spacy spanbert convert FORMAT INPUT OUTPUT [options]
    python -m spacy_spanbert.convert FORMAT INPUT OUTPUT [options]

write a `.spacy` file to OUTPUT and print a summary (docs, tokens and
per-label counts). Every format has a module with a reader returning
`List[Doc]`:

    read_conll(path, nlp_or_vocab, n_sents=1)       BIO / IOB / BIOES / BILUO columns
    read_litbank(path, nlp_or_vocab, spans_key=...)  LitBank nested-entity .tsv
    read_prodigy(path, nlp_or_vocab)                 Prodigy-style JSONL
    read_trec(path, nlp_or_vocab, fine=False)        TREC question classes
    read_goemotions(path, nlp_or_vocab, labels=...)  GoEmotions .tsv
    read_squad(path, nlp_or_vocab, spans_key=...)    SQuAD 1.1 / 2.0 JSON (docs and SquadStats)

`nlp_or_vocab` is a `Language`, a `Vocab` or a language code ("en"). Files
are read through `commands/text_input.py` (a `.gz` is decompressed, a BOM
dropped, CRLF accepted). Malformed input raises `ConversionError` (the
reader's `InputError`, a `ValueError`) whose message names `path:line:`.
`engine.convert` runs a whole conversion; `cli.py` holds the two shells.
"""

from .cli import convert_cli, main
from .common import DEFAULT_SPANS_KEY, QA_SPANS_KEY, ConversionError
from .conll import read_conll
from .engine import FORMATS, ConvertResult, OptionError, convert
from .goemotions import read_goemotions, read_labels
from .litbank import read_litbank
from .prodigy import read_prodigy
from .squad import SquadStats, read_squad
from .summary import format_summary, summarize
from .trec import read_trec

__all__ = [
    "ConversionError",
    "ConvertResult",
    "DEFAULT_SPANS_KEY",
    "FORMATS",
    "OptionError",
    "QA_SPANS_KEY",
    "SquadStats",
    "convert",
    "convert_cli",
    "format_summary",
    "main",
    "read_conll",
    "read_goemotions",
    "read_labels",
    "read_litbank",
    "read_prodigy",
    "read_squad",
    "read_trec",
    "summarize",
]
