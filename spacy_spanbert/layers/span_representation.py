"""Span representation: endpoints + attention pooling + width, projected.

For token vectors x_1..x_n and a span s = (i, j) (tokens i..j-1):

    a_t = w . x_t                         attention logits, one per token
                                          (a bias would cancel in the softmax)
    alpha = softmax(a_i..a_{j-1})         (Lee et al. 2017)
    x_hat = sum_t alpha_t x_t
    g_s = W [x_i ; x_{j-1} ; x_hat] + phi(width) + b

The projection is linear, so `W x_hat` is computed as the alpha-weighted sum
of the projected tokens, and the endpoint blocks as gathers from projected
tokens: nothing of size `n_spans x (3 * nI)` is ever materialised. The sum
for all spans is one fused weighted gather (`embedding_bag`) over a table of
token-level rows. `w` starts at zero (uniform attention = mean pooling) and
`W` starts as an orthonormal map on the pooled block and zero elsewhere, so
an untrained encoder returns mean-pooled token vectors and keeps their
similarity structure.
"""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

N_WIDTH_BUCKETS = 16

# (rows, bag offsets, per-row weights): the arguments of `F.embedding_bag`.
Bags = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def width_buckets(widths: torch.Tensor) -> torch.Tensor:
    """Map span widths to buckets: 1..8 exactly, then one bucket per power of 2.

    widths (torch.Tensor): Span widths (>= 1).
    RETURNS (torch.Tensor): Bucket ids in [0, N_WIDTH_BUCKETS).
    """
    w = widths.clamp(min=1)
    small = w - 1
    large = 8 + torch.floor(torch.log2(w.to(torch.float32))).to(torch.long) - 3
    return torch.where(w <= 8, small, large).clamp(max=N_WIDTH_BUCKETS - 1)


class SpanRepresentation(nn.Module):
    """The parameters: `attention` (w; no bias, as softmax ignores a shift),
    `token_proj` (W's pooled, start and end blocks stacked, [3 * n_out, n_in],
    so that the token-level parts are one matrix product), `bias` (b) and
    `width_embed` (phi)."""

    def __init__(self, n_in: int, n_out: int, dropout: float = 0.0):
        super().__init__()
        self.n_in = n_in
        self.n_out = n_out
        self.dropout = nn.Dropout(dropout)
        self.attention = nn.Linear(n_in, 1, bias=False)
        self.token_proj = nn.Linear(n_in, 3 * n_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.width_embed = nn.Embedding(N_WIDTH_BUCKETS, n_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.attention.weight.zero_()
            self.token_proj.weight.zero_()
            self.width_embed.weight.zero_()
            self.bias.zero_()
            pool = self.token_proj.weight[: self.n_out]
            if self.n_out == self.n_in:
                pool.copy_(torch.eye(self.n_in))
            else:
                # Rows (or columns) orthonormal: distances are kept when
                # n_out >= n_in and approximately kept otherwise.
                pool.copy_(nn.init.orthogonal_(torch.empty(self.n_out, self.n_in)))

    def token_table(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The token-level quantities every span is built from.

        X (torch.Tensor): [n_tokens, n_in] token vectors.
        RETURNS (Tuple[torch.Tensor, torch.Tensor]): The attention logits
            [n_tokens] and the row table [3 * n_tokens + N_WIDTH_BUCKETS,
            n_out]: the pool, start and end projections of token 0, of token
            1, ..., then the width rows with the bias b added (every span
            takes exactly one width row, with weight 1).
        """
        X = self.dropout(X)
        logits = self.attention(X).squeeze(-1)
        parts = self.token_proj(X).reshape(3 * X.shape[0], self.n_out)
        return logits, torch.cat([parts, self.width_embed.weight + self.bias])

    def bags(self, logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> Bags:
        """One weighted bag per span over the rows of the table of
        `token_table`: the span's tokens' pool rows with their softmax(logits)
        weights, its first token's start row, its last token's end row and
        its width row, each with weight 1.

        logits (torch.Tensor): [n_tokens] attention logits.
        starts, ends (torch.Tensor): [n_spans] (ends exclusive, > starts).
        RETURNS (Bags): (rows, bag offsets, weights) for `embedding_bag`.
        """
        n_tokens = logits.shape[0]
        device = logits.device
        n_spans = starts.shape[0]
        widths = ends - starts
        # Bag of span s: its `widths[s]` pooled tokens, then its start, end
        # and width rows. Items are numbered span by span, so the p-th pooled
        # item overall (of span s) sits at item p + 3 * s, and its token is
        # p + (starts[s] - first pooled item of s).
        pool_end = torch.cumsum(widths, 0)
        pool_first = pool_end - widths
        bag_offsets = pool_first + 3 * torch.arange(n_spans, device=device)
        n_pool = int(pool_end[-1]) if n_spans else 0
        span_of_item = torch.repeat_interleave(torch.arange(n_spans, device=device), widths, output_size=n_pool)
        item = torch.arange(n_pool, device=device)
        item_tokens = item + (starts - pool_first)[span_of_item]
        pool_items = item + 3 * span_of_item
        tail = bag_offsets + widths
        rows = torch.empty(n_pool + 3 * n_spans, dtype=starts.dtype, device=device)
        rows[pool_items] = 3 * item_tokens
        rows[tail] = 3 * starts + 1
        rows[tail + 1] = 3 * (ends - 1) + 2
        rows[tail + 2] = 3 * n_tokens + width_buckets(widths)
        item_logits = logits[item_tokens]
        # softmax per span; the shift by the span max only guards exp().
        span_max = torch.full((n_spans,), float("-inf"), device=device, dtype=logits.dtype).scatter_reduce(
            0, span_of_item, item_logits.detach(), "amax"
        )
        exp = torch.exp(item_logits - span_max[span_of_item])
        norm = logits.new_zeros(n_spans).index_add(0, span_of_item, exp)
        alpha = exp / norm[span_of_item]
        weights = logits.new_ones(rows.shape[0]).index_put((pool_items,), alpha)
        return rows, bag_offsets, weights

    @staticmethod
    def pad_bags(bags: Bags, before: int, after: int) -> Bags:
        """`bags` with `before` empty bags in front and `after` behind: their
        gathered rows are zeros."""
        rows, bag_offsets, weights = bags
        front = bag_offsets.new_zeros(before)
        back = bag_offsets.new_full((after,), rows.shape[0])
        return rows, torch.cat([front, bag_offsets, back]), weights

    @staticmethod
    def gather(bags: Bags, table: torch.Tensor) -> torch.Tensor:
        """One vector per bag: the weighted sum of its rows of `table`."""
        rows, bag_offsets, weights = bags
        return F.embedding_bag(rows, table, bag_offsets, mode="sum", per_sample_weights=weights)

    def forward(self, X: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """X: [n_tokens, n_in]; starts, ends: [n_spans] (ends exclusive, > starts).
        Returns [n_spans, n_out]."""
        if starts.shape[0] == 0:
            return X.new_zeros((0, self.n_out))
        logits, table = self.token_table(X)
        return self.gather(self.bags(logits, starts, ends), table)
