"""SpanBERT's span masking (Joshi et al. 2020) and BERT's random masking
for `spacy spanbert pretrain`.

Span lengths in words are drawn from a geometric distribution (p = 0.2)
truncated at 10 words (mean 3.8 words, as in the paper), spans cover whole
words, 15% of the word pieces of a sequence are masked, and the 80/10/10
choice (mask / random pieces / keep) is made once per span. Spans never touch
the first or last word of a sequence, and two spans never touch each other,
so every span boundary is an unmasked piece of text.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch

from ...errors import Errors
from .data import Block

MASKINGS = ("span", "random")
MASK_RATIO = 0.15
GEOMETRIC_P = 0.2
MAX_SPAN_WORDS = 10


def check_masking(masking: str) -> None:
    """Raise a ValueError unless `masking` is one of MASKINGS."""
    if masking not in MASKINGS:
        raise ValueError(Errors.E309.format(masking=masking, choices=", ".join(MASKINGS)))


def span_length_distribution(p: float = GEOMETRIC_P, max_words: int = MAX_SPAN_WORDS) -> numpy.ndarray:
    """P(length = 1..max_words) of a geometric distribution truncated at
    `max_words` and renormalised, as SpanBERT samples span lengths."""
    lengths = numpy.arange(1, max_words + 1)
    probs = p * (1 - p) ** (lengths - 1)
    return probs / probs.sum()


class Masker:
    """Chooses the masked spans of a block and builds padded batches.

    tokenizer (PreTrainedTokenizerFast): The encoder's fast tokenizer.
    masking (str): "span" (SpanBERT) or "random" (BERT: single pieces).
    ratio (float): The share of word pieces to mask.
    p (float): The parameter of the geometric distribution of span lengths.
    max_words (int): The longest span, in words.
    """

    def __init__(
        self,
        tokenizer,
        *,
        masking: str = "span",
        ratio: float = MASK_RATIO,
        p: float = GEOMETRIC_P,
        max_words: int = MAX_SPAN_WORDS,
    ):
        check_masking(masking)
        self.masking = masking
        self.ratio = ratio
        self.lengths = numpy.arange(1, max_words + 1)
        self.length_probs = span_length_distribution(p, max_words)
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        specials = set(tokenizer.all_special_ids)
        self.random_pool = numpy.asarray([i for i in range(len(tokenizer)) if i not in specials], dtype="int64")
        marker = self.random_pool[0]
        framed = tokenizer.build_inputs_with_special_tokens([int(marker)])
        at = framed.index(marker)
        self.prefix = list(framed[:at])
        self.suffix = list(framed[at + 1 :])

    @property
    def n_special(self) -> int:
        """The number of special tokens around a block (e.g. [CLS] and [SEP])."""
        return len(self.prefix) + len(self.suffix)

    def sample_spans(
        self, words: numpy.ndarray, rng: numpy.random.Generator, target: Optional[float] = None
    ) -> List[Tuple[int, int]]:
        """The masked spans of one block, as sorted (start, end) piece offsets
        (end exclusive). Spans are drawn until `target` pieces (default:
        `ratio` of the block) are masked; the last span is kept whole, and
        `batch` carries the excess over to the next block, so a batch masks
        `ratio` of its pieces while span lengths keep their distribution.

        Span masking: a length in words from the truncated geometric
        distribution, then a position for it among the inner words (not the
        block's first or last word) that keeps one unmasked piece between
        spans. Random masking: single pieces of the inner words.

        words (numpy.ndarray): Per piece of the block, the index of its word.
        rng (numpy.random.Generator): The source of randomness.
        target (Optional[float]): The number of pieces to mask.
        RETURNS (List[Tuple[int, int]]): The spans.
        """
        n = len(words)
        if target is None:
            target = self.ratio * n
        starts = numpy.flatnonzero(numpy.r_[True, words[1:] != words[:-1]]) if n else numpy.zeros(0, "int64")
        ends = numpy.r_[starts[1:], n]
        n_inner = len(starts) - 2
        if n_inner < 1 or target < 0.5:
            return []
        masked = numpy.zeros(n + 1, dtype=bool)
        spans: List[Tuple[int, int]] = []
        total = 0
        for _ in range(int(10 * target) + 10):
            if total >= target - 0.5:
                break
            if self.masking == "random":
                s = int(rng.integers(starts[1], ends[n_inner]))
                if not masked[s]:
                    masked[s] = True
                    spans.append((s, s + 1))
                    total += 1
                continue
            length = min(int(rng.choice(self.lengths, p=self.length_probs)), n_inner)
            # a new position (not a new length) when the span collides, so
            # long spans are not under-represented
            for first in rng.integers(1, n_inner - length + 2, size=10):
                s, e = int(starts[first]), int(ends[first + length - 1])
                if not masked[s - 1 : e + 1].any():
                    masked[s:e] = True
                    spans.append((s, e))
                    total += e - s
                    break
        return sorted(spans)

    def batch(self, blocks: Sequence[Block], rng: numpy.random.Generator) -> Dict[str, torch.Tensor]:
        """Mask the blocks and pad them into one batch.

        blocks (Sequence[Block]): The blocks of the batch.
        rng (numpy.random.Generator): The source of randomness.
        RETURNS (Dict[str, torch.Tensor]): input_ids and attention_mask
            (batch, length); for each masked piece, its `row`, `position`,
            `target` id, span boundaries `left` / `right` and `offset` in the span.
        """
        length = max(len(b) for b in blocks) + self.n_special
        input_ids = numpy.full((len(blocks), length), self.pad_id, dtype="int64")
        attention = numpy.zeros((len(blocks), length), dtype="int64")
        rows, positions, targets, lefts, rights, offsets = [], [], [], [], [], []
        k = len(self.prefix)
        excess = 0.0
        for row, block in enumerate(blocks):
            ids = block.ids.copy()
            target = self.ratio * len(block) - excess
            spans = self.sample_spans(block.words, rng, target)
            excess = sum(e - s for s, e in spans) - target
            for s, e in spans:
                choice = rng.random()
                if choice < 0.8:
                    ids[s:e] = self.mask_id
                elif choice < 0.9:
                    ids[s:e] = self.random_pool[rng.integers(0, len(self.random_pool), e - s)]
                span = numpy.arange(s, e)
                rows.append(numpy.full(e - s, row))
                positions.append(span + k)
                targets.append(block.ids[s:e])
                lefts.append(numpy.full(e - s, s - 1 + k))
                rights.append(numpy.full(e - s, e + k))
                offsets.append(span - s)
            sequence = numpy.concatenate([self.prefix, ids, self.suffix])
            input_ids[row, : len(sequence)] = sequence
            attention[row, : len(sequence)] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "row": _cat(rows),
            "position": _cat(positions),
            "target": _cat(targets),
            "left": _cat(lefts),
            "right": _cat(rights),
            "offset": _cat(offsets),
        }

    def masks_any(self, blocks: Sequence[Block]) -> bool:
        """Whether any of the blocks is long enough to hold a masked span."""
        return any(self.sample_spans(block.words, numpy.random.default_rng(0)) for block in blocks)


def _cat(parts: List[numpy.ndarray]) -> torch.Tensor:
    """The parts as one int64 tensor (empty for no parts)."""
    return torch.from_numpy(numpy.concatenate(parts).astype("int64") if parts else numpy.zeros(0, "int64"))
