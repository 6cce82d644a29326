"""The PyTorch module behind `spacy-spanbert.CorefScorer.v1` (Lee et al. 2017,
2018: end-to-end span ranking), and its shim, saved as safetensors.

Per doc, from the span vectors `g` of the candidate spans:

1. mention scores `s_m(i) = FFNN_m(g_i)` for every candidate;
2. the top `mention_ratio * n_tokens` candidates by `s_m` are kept, in
   text order (start, then end);
3. each kept mention `i` ranks the kept mentions `j < i` among the previous
   `antecedent_window` by the coarse score `s_m(i) + s_m(j) + g_i W g_j` and
   keeps the best `max_antecedents` (K);
4. those K get the full score `s(i, j) = s_m(i) + s_m(j) + s_c(i, j) +
   FFNN_a(r_ij)`, with `r_ij` the shared pair representation
   (`span_pairs.PairRepresentation`), whose product with the first layer's
   weight is summed from per-mention terms without building `r_ij`. Column
   0 of the output is the dummy antecedent, score 0.

Cost per doc of n tokens, c candidates and M = mention_ratio * n kept
mentions of width d: mention scores O(c d h); coarse scores
O(M (C + window) d) time in blocks of C = ROW_CHUNK mentions, so
O(C (C + window)) memory per block; fine scores O(M d h) for the
per-mention terms and O(M K (d + h) h) for the pairs. All are linear in n;
nothing of size M x M is built.
"""

from typing import List, Tuple

import torch
from torch import nn

from .span_pairs import PairRepresentation
from .torch_shim import ConfiguredTorchShim

# Kept mentions whose antecedents are ranked together (one block).
ROW_CHUNK = 256
# Score of a padded antecedent slot: exp() of it is 0 next to the dummy's 0.
MASKED = -1e4
# Names the coreference weights in error messages.
WHAT = "spanbert_coref: the saved coreference weights"


def _ffnn(n_in: int, hidden_width: int, dropout: float) -> nn.Module:
    """Two ReLU hidden layers and one output score, as in Lee et al."""
    return nn.Sequential(
        nn.Linear(n_in, hidden_width),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_width, hidden_width),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_width, 1),
    )


class CorefModule(nn.Module):
    """Span vectors -> mention scores, pruned mentions and antecedent scores."""

    def __init__(self, width: int, hidden_width: int, feature_width: int, dropout: float):
        super().__init__()
        self.mention = _ffnn(width, hidden_width, dropout)
        self.coarse = nn.Linear(width, width, bias=False)
        self.pairs = PairRepresentation(width, feature_width)
        self.antecedent = _ffnn(self.pairs.n_out, hidden_width, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        G: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        span_lengths: List[int],
        doc_lengths: List[int],
        *,
        mention_ratio: float,
        max_antecedents: int,
        antecedent_window: int,
    ) -> Tuple[torch.Tensor, ...]:
        """G: [c, width] span vectors of the batch; starts, ends: [c] their
        doc-local token offsets; span_lengths, doc_lengths: candidates and
        tokens per doc.
        RETURNS: ([c] mention scores, [M] kept rows of G, [n_docs] kept per
        doc, [M, K] antecedents as rows of the kept list (-1: none),
        [M, 1 + K] scores, column 0 the dummy)."""
        scores_m = self.mention(G).squeeze(-1)
        n_keep = [min(n, max(1, int(mention_ratio * t))) for n, t in zip(span_lengths, doc_lengths)]
        width = max(1, min(max_antecedents, antecedent_window, max(n_keep, default=0) - 1))
        kept, antecedents, pair_scores = [], [], []
        first = offset = 0
        for n_spans, n_tokens, k in zip(span_lengths, doc_lengths, n_keep):
            rows = self._prune(scores_m[first : first + n_spans], starts, ends, first, k, n_tokens)
            ants, scores = self._antecedents(G, scores_m, starts, ends, rows, width, antecedent_window)
            kept.append(rows)
            antecedents.append(torch.where(ants >= 0, ants + offset, ants))
            pair_scores.append(scores)
            first += n_spans
            offset += len(rows)
        lengths = torch.tensor([len(rows) for rows in kept], dtype=torch.int64)
        return scores_m, torch.cat(kept), lengths, torch.cat(antecedents), torch.cat(pair_scores)

    def _prune(self, scores, starts, ends, first: int, k: int, n_tokens: int) -> torch.Tensor:
        """Rows (of the batch) of the top-k candidates of a doc, in text order."""
        if k <= 0:
            return torch.zeros((0,), dtype=torch.int64, device=scores.device)
        top = torch.topk(scores.detach(), k).indices + first
        order = torch.argsort(starts[top] * (n_tokens + 1) + ends[top])
        return top[order]

    def _antecedents(self, G, scores_m, starts, ends, rows, width: int, window: int):
        """Antecedents ([M, width]) and scores ([M, 1 + width]) of one doc."""
        n = len(rows)
        if n == 0:
            return rows.new_zeros((0, width)), G.new_zeros((0, 1 + width))
        Gk = self.dropout(G[rows])
        sk = scores_m[rows]
        offsets = (starts[rows], ends[rows])
        GW = self.coarse(Gk)
        first = self.antecedent[0]
        # The first layer of FFNN_a over r_ij, from per-mention terms (span_pairs.py).
        pairs = self.pairs.project(Gk, offsets, first.weight, first.bias)
        all_ants, all_scores = [], []
        for r0 in range(0, n, ROW_CHUNK):
            r1 = min(n, r0 + ROW_CHUNK)
            c0 = max(0, r0 - window)
            block = GW[r0:r1] @ Gk[c0:r1].T + sk[r0:r1, None] + sk[None, c0:r1]
            i = torch.arange(r0, r1, device=G.device)[:, None]
            j = torch.arange(c0, r1, device=G.device)[None, :]
            valid = (j < i) & (j >= i - window)
            k = min(width, r1 - c0)
            coarse, idx = torch.topk(block.masked_fill(~valid, float("-inf")), k, dim=1)
            idx = idx + c0
            ok = torch.isfinite(coarse)
            fine = self.antecedent[1:](pairs(i, idx)).squeeze(-1)
            scores = torch.where(ok, coarse + fine, torch.full_like(fine, MASKED))
            ants = torch.where(ok, idx, torch.full_like(idx, -1))
            if k < width:
                scores = nn.functional.pad(scores, (0, width - k), value=MASKED)
                ants = nn.functional.pad(ants, (0, width - k), value=-1)
            all_ants.append(ants)
            all_scores.append(scores)
        scores = torch.cat(all_scores)
        return torch.cat(all_ants), torch.cat([scores.new_zeros((n, 1)), scores], dim=1)


class CorefShim(ConfiguredTorchShim):
    """The shim of `CorefModule`, built at initialization (when the width of
    the span vectors is known) and saved without pickle."""

    module_cls = CorefModule
    what = WHAT
