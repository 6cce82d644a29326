"""Pair representation: one vector per ordered pair of spans, shared by the
relation head (`spanbert_rel`) and the coreference head (`spanbert_coref`).

For span vectors `g_i`, `g_j` of spans `(s_i, e_i)`, `(s_j, e_j)` (token
offsets, ends exclusive):

    r_ij = [g_i ; g_j ; g_i * g_j ; phi_d(bucket(distance)) ; phi_w(bucket(width_i)) ; phi_w(bucket(width_j))]

where distance is the number of tokens between the two spans (0 when they
touch or overlap) and `bucket` maps 1..8 exactly, then one bucket per power of
2 (Lee et al. 2017; SpERT, Eberts and Ulges 2020). The caller adds what is
particular to its task (a context vector for relations, mention scores for
coreference). Pairs are given as index rows into the span vectors, so the
cost is linear in the number of pairs: nothing of size spans x spans is built.
"""

from typing import Tuple

import torch
from torch import nn

from .span_representation import N_WIDTH_BUCKETS, width_buckets


def distance_buckets(distances: torch.Tensor) -> torch.Tensor:
    """Map token distances (>= 0) to buckets: 0..7 exactly, then one per power
    of 2, capped at N_WIDTH_BUCKETS - 1."""
    return width_buckets(distances + 1)


def pair_distances(starts: torch.Tensor, ends: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """Tokens strictly between span `heads[k]` and span `tails[k]` (0 when
    they touch or overlap), for every pair k."""
    gap_right = starts[tails] - ends[heads]
    gap_left = starts[heads] - ends[tails]
    return torch.clamp(torch.maximum(gap_right, gap_left), min=0)


class PairRepresentation(nn.Module):
    """`r_ij` of the module docstring for index rows of pairs.

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
        return 3 * self.width + 3 * self.feature_width

    def forward(
        self, G: torch.Tensor, offsets: Tuple[torch.Tensor, torch.Tensor], heads: torch.Tensor, tails: torch.Tensor
    ) -> torch.Tensor:
        """G: [n_spans, width] span vectors; offsets: ([n_spans] starts,
        [n_spans] ends) in one token numbering (ends exclusive); heads, tails:
        [n_pairs] rows of G. Returns [n_pairs, n_out]."""
        starts, ends = offsets
        g_i, g_j = G[heads], G[tails]
        widths = ends - starts
        features = [
            self.distance_embed(distance_buckets(pair_distances(starts, ends, heads, tails))),
            self.width_embed(width_buckets(widths[heads])),
            self.width_embed(width_buckets(widths[tails])),
        ]
        return torch.cat([g_i, g_j, g_i * g_j, *features], dim=-1)
