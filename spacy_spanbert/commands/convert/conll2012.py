"""The conll2012 format: CoNLL-2012 coreference files -> one Doc per
document part, with the chains as span groups `coref_clusters_1`, `..._2`, ...

A document part runs from `#begin document (NAME); part NNN` to `#end
document`; blank lines separate sentences. A token line holds the word in
column 4 and the chain ids in the last column: `(12` opens a mention of chain
12, `12)` closes the innermost open one, `(12)` is a one-token mention,
several are joined by `|`, and `-` (or `_`, or an empty last column after a
tab, as in LitBank) means none. Columns are tab-separated if the line has a
tab, else whitespace-separated.
"""

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spacy.tokens import Doc, Span, SpanGroup
from spacy.vocab import Vocab

from ...coref.scoring import DEFAULT_CLUSTER_PREFIX
from ...errors import Errors
from ..text_input import data_suffix, iter_lines
from .common import ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp, token_doc

CONLL2012_SUFFIX = ".conll"
_EMPTY = ("-", "_", "")
_PART_RE = re.compile(r"^\(([^()|\s]+)\)$|^\(([^()|\s]+)$|^([^()|\s]+)\)$")
# the word is column 4; the chain ids are the last column, after it
_MIN_COLUMNS = 5


def read_conll2012(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
    span_cluster_prefix: str = DEFAULT_CLUSTER_PREFIX,
) -> List[Doc]:
    """Read CoNLL-2012 coreference files: a folder (its `.conll` and
    `.conll.gz` files in sorted name order) or a single file. One Doc per
    document part, sentence starts set, each chain a span group
    `{span_cluster_prefix}_N`, numbered in order of first mention.

    path (PathLike): A folder of `.conll` files, or one file.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    limit (Optional[int]): Keep only the first `limit` docs.
    encoding (str): The files' encoding.
    span_cluster_prefix (str): The prefix of the cluster span groups.
    RETURNS (List[Doc]): The docs.
    """
    check_limit("read_conll2012", limit)
    vocab = get_nlp(nlp_or_vocab).vocab
    docs: List[Doc] = []
    for file_ in _conll_files(Path(path)):
        for doc in _read_file(file_, vocab, encoding, span_cluster_prefix):
            docs.append(doc)
            if limit is not None and len(docs) >= limit:
                return docs
    return docs


def _conll_files(path: Path) -> List[Path]:
    """The `.conll` files of a folder, sorted by name, or the one file given."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if data_suffix(p) == CONLL2012_SUFFIX and p.is_file())
        if not files:
            raise ConversionError(Errors.E618.format(path=path))
        return files
    if path.exists():
        return [path]
    raise ConversionError(Errors.E117.format(path=path))


class _Part:
    """The document part being read: words, sentence starts, mentions."""

    def __init__(self, begun: int) -> None:
        self.begun = begun
        self.words: List[str] = []
        self.sent_starts: List[bool] = []
        self.new_sentence = True
        # chain id -> stack of (start token, line) of its open mentions
        self.open: Dict[str, List[Tuple[int, int]]] = {}
        self.chains: Dict[str, List[Tuple[int, int]]] = {}

    def add_token(self, word: str, field: str, *, path: Path, lineno: int) -> None:
        i = len(self.words)
        self.words.append(word)
        self.sent_starts.append(self.new_sentence)
        self.new_sentence = False
        if field in _EMPTY:
            return
        for part in field.split("|"):
            match = _PART_RE.match(part)
            if match is None:
                raise ConversionError(Errors.E612.format(path=path, line=lineno, field=field))
            single, opening, closing = match.groups()
            if single is not None:
                self.chains.setdefault(single, []).append((i, i + 1))
            elif opening is not None:
                self.open.setdefault(opening, []).append((i, lineno))
            else:
                stack = self.open.get(closing)
                if not stack:
                    raise ConversionError(Errors.E610.format(path=path, line=lineno, chain=closing))
                start, _ = stack.pop()
                self.chains.setdefault(closing, []).append((start, i + 1))

    def to_doc(self, vocab: Vocab, prefix: str, *, path: Path, end: int) -> Doc:
        for chain, stack in self.open.items():
            if stack:
                raise ConversionError(Errors.E611.format(path=path, line=stack[0][1], chain=chain, end=end))
        if not self.words:
            raise ConversionError(Errors.E619.format(path=path, line=self.begun))
        doc = token_doc(vocab, self.words, self.sent_starts)
        chains = sorted((sorted(set(mentions)) for mentions in self.chains.values()), key=lambda m: m[0])
        for n, mentions in enumerate(chains, 1):
            key = f"{prefix}_{n}"
            doc.spans[key] = SpanGroup(doc, name=key, spans=[Span(doc, s, e) for s, e in mentions])
        return doc


def _read_file(path: Path, vocab: Vocab, encoding: str, prefix: str) -> List[Doc]:
    """The docs of the document parts of one file."""
    docs: List[Doc] = []
    part: Optional[_Part] = None
    for lineno, line in iter_lines(path, encoding=encoding):
        if line.startswith("#begin document"):
            if part is not None:
                raise ConversionError(Errors.E615.format(path=path, line=lineno, begun=part.begun))
            part = _Part(lineno)
        elif line.startswith("#end document"):
            if part is None:
                raise ConversionError(Errors.E616.format(path=path, line=lineno))
            docs.append(part.to_doc(vocab, prefix, path=path, end=lineno))
            part = None
        elif not line.strip():
            if part is not None:
                part.new_sentence = True
        elif part is None:
            raise ConversionError(Errors.E614.format(path=path, line=lineno))
        else:
            columns = line.split("\t") if "\t" in line else line.split()
            if len(columns) < _MIN_COLUMNS or not columns[3].strip():
                raise ConversionError(Errors.E613.format(path=path, line=lineno, found=len(columns), text=line))
            part.add_token(columns[3].strip(), columns[-1].strip(), path=path, lineno=lineno)
    if part is not None:
        raise ConversionError(Errors.E617.format(path=path, line=part.begun))
    return docs
