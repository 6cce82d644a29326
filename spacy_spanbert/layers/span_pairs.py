"""Pair representation: one vector per ordered pair of spans, shared by the
relation head (`spanbert_rel`) and the coreference head (`spanbert_coref`).

For span vectors `g_i`, `g_j` of spans `(s_i, e_i)`, `(s_j, e_j)` (token
offsets, ends exclusive):

    r_ij = [g_i ; g_j ; g_i * g_j ; phi_d(bucket(distance)) ; phi_w(bucket(width_i)) ; phi_w(bucket(width_j))]

where distance is the number of tokens between the two spans (0 when they
touch or overlap) and `bucket` maps 1..8 exactly, then one bucket per power of
2 (Lee et al. 2017; SpERT, Eberts and Ulges 2020). The caller adds what is
particular to its task (a context vector for relations, mention scores for
coreference).

Both heads only ever use `r_ij` through a linear layer, so `r_ij` is never
built: with the layer's weight split by the blocks of `r_ij`,

    W r_ij + b = (W_i g_i + W_wi phi_w(i) + b) + (W_j g_j + W_wj phi_w(j))
                 + W_p (g_i * g_j) + (W_d phi_d)(distance)

the first two terms are computed once per span, the distance term is a row
of a small projected table, and only the product term costs a matrix product
per pair (over `width` inputs instead of `n_out`). Pairs are given as index
rows into the span vectors, so the cost is linear in the number of pairs:
nothing of size spans x spans is built.
"""

from typing import Optional, Tuple

import torch
from torch import nn

from .span_representation import N_WIDTH_BUCKETS, width_buckets


def distance_buckets(distances: torch.Tensor) -> torch.Tensor:
    """Map token distances (>= 0) to buckets: 0..7 exactly, then one per power
    of 2, capped at N_WIDTH_BUCKETS - 1."""
    return width_buckets(distances + 1)


def pair_distances(starts: torch.Tensor, ends: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """Tokens strictly between span `heads[k]` and span `tails[k]` (0 when
    they touch or overlap), for every pair k (heads and tails broadcast)."""
    gap_right = starts[tails] - ends[heads]
    gap_left = starts[heads] - ends[tails]
    return torch.clamp(torch.maximum(gap_right, gap_left), min=0)


class ProjectedPairs:
    """`W r_ij + b` for pairs of one set of spans, from the per-span terms
    that `PairRepresentation.project` computed: call it with index rows."""

    def __init__(
        self,
        G: torch.Tensor,
        offsets: Tuple[torch.Tensor, torch.Tensor],
        head_terms: torch.Tensor,
        tail_terms: torch.Tensor,
        product_weight: torch.Tensor,
        distance_table: torch.Tensor,
    ):
        self.G = G
        self.starts, self.ends = offsets
        self.head_terms = head_terms
        self.tail_terms = tail_terms
        self.product_weight = product_weight
        self.distance_table = distance_table

    def __call__(self, heads: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """heads, tails: rows of G, of any shapes that broadcast together to S
        (e.g. [m, 1] heads against [m, k] tails). Returns S + [n_out of W]."""
        distances = distance_buckets(pair_distances(self.starts, self.ends, heads, tails))
        terms = self.head_terms[heads] + self.tail_terms[tails] + self.distance_table[distances]
        return terms + (self.G[heads] * self.G[tails]) @ self.product_weight.T


class PairRepresentation(nn.Module):
    """`r_ij` of the module docstring, through a linear layer, for index rows
    of pairs.

    width (int): Width of the span vectors.
    feature_width (int): Width of each distance and width embedding.
    """

    def __init__(self, width: int, feature_width: int = 32):
        super().__init__()
        self.width = width
        self.feature_width = feature_width
        self.distance_embed = nn.Embedding(N_WIDTH_BUCKETS, feature_width)
        self.width_embed = nn.Embedding(N_WIDTH_BUCKETS, feature_width)

    @property
    def n_out(self) -> int:
        """Width of `r_ij`: the number of input columns of W."""
        return 3 * self.width + 3 * self.feature_width

    def project(
        self,
        G: torch.Tensor,
        offsets: Tuple[torch.Tensor, torch.Tensor],
        weight: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
    ) -> ProjectedPairs:
        """The per-span terms of `weight @ r_ij + bias` for every row of G.

        G: [n_spans, width] span vectors; offsets: ([n_spans] starts,
        [n_spans] ends) in one token numbering (ends exclusive); weight:
        [h, n_out] (e.g. the first `n_out` columns of an nn.Linear's weight,
        so that the saved parameters stay those of the layer); bias: [h].
        """
        d, f = self.width, self.feature_width
        W_i, W_j, W_p, W_d, W_wi, W_wj = weight.split([d, d, d, f, f, f], dim=1)
        starts, ends = offsets
        widths = width_buckets(ends - starts)
        head_terms = G @ W_i.T + (self.width_embed.weight @ W_wi.T)[widths]
        if bias is not None:
            head_terms = head_terms + bias
        tail_terms = G @ W_j.T + (self.width_embed.weight @ W_wj.T)[widths]
        distance_table = self.distance_embed.weight @ W_d.T
        return ProjectedPairs(G, offsets, head_terms, tail_terms, W_p, distance_table)

    def forward(
        self,
        G: torch.Tensor,
        offsets: Tuple[torch.Tensor, torch.Tensor],
        heads: torch.Tensor,
        tails: torch.Tensor,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """`weight @ r_ij + bias` for the pairs (heads[k], tails[k]): [n_pairs]
        rows of G. The per-span terms are computed for the rows that occur in
        a pair only (G may hold many spans that are in none). Returns
        [n_pairs, h]."""
        starts, ends = offsets
        rows, positions = torch.unique(torch.cat([heads, tails]), return_inverse=True)
        projected = self.project(G[rows], (starts[rows], ends[rows]), weight, bias)
        return projected(positions[: heads.shape[0]], positions[heads.shape[0] :])
