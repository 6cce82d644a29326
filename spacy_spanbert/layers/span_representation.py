"""Span representation: endpoints + attention pooling + width, projected.

For token vectors x_1..x_n and a span s = (i, j) (tokens i..j-1):

    a_t = w . x_t + b                     attention logits, one per token
    alpha = softmax(a_i..a_{j-1})         (Lee et al. 2017)
    x_hat = sum_t alpha_t x_t
    g_s = W [x_i ; x_{j-1} ; x_hat ; phi(width)] + b

The projection is linear, so `W x_hat` is computed as the alpha-weighted sum
of the projected tokens, and the endpoint blocks as gathers from projected
tokens: nothing of size `n_spans x (3 * nI)` is ever materialised. `w` starts
at zero (uniform attention = mean pooling) and `W` starts as an orthonormal
map on the pooled block and zero elsewhere, so an untrained encoder returns
mean-pooled token vectors and keeps their similarity structure.
"""

import torch
from torch import nn

N_WIDTH_BUCKETS = 16


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
    def __init__(self, n_in: int, n_out: int, dropout: float = 0.0):
        super().__init__()
        self.n_in = n_in
        self.n_out = n_out
        self.dropout = nn.Dropout(dropout)
        self.attention = nn.Linear(n_in, 1)
        self.start_proj = nn.Linear(n_in, n_out, bias=False)
        self.end_proj = nn.Linear(n_in, n_out, bias=False)
        self.pool_proj = nn.Linear(n_in, n_out, bias=True)
        self.width_embed = nn.Embedding(N_WIDTH_BUCKETS, n_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.attention.weight.zero_()
            self.attention.bias.zero_()
            self.start_proj.weight.zero_()
            self.end_proj.weight.zero_()
            self.width_embed.weight.zero_()
            self.pool_proj.bias.zero_()
            if self.n_out == self.n_in:
                self.pool_proj.weight.copy_(torch.eye(self.n_in))
            else:
                # Rows (or columns) orthonormal: distances are kept when
                # n_out >= n_in and approximately kept otherwise.
                nn.init.orthogonal_(self.pool_proj.weight)

    def forward(
        self, X: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> torch.Tensor:
        """X: [n_tokens, n_in]; starts, ends: [n_spans] (ends exclusive, > starts).
        Returns [n_spans, n_out]."""
        n_spans = starts.shape[0]
        if n_spans == 0:
            return X.new_zeros((0, self.n_out))
        X = self.dropout(X)
        widths = ends - starts
        span_of_pair = torch.repeat_interleave(
            torch.arange(n_spans, device=X.device), widths
        )
        offsets = torch.cumsum(widths, 0) - widths
        n_pairs = span_of_pair.shape[0]
        token_of_pair = (
            starts[span_of_pair]
            + torch.arange(n_pairs, device=X.device)
            - offsets[span_of_pair]
        )
        logits = self.attention(X).squeeze(-1)
        pair_logits = logits[token_of_pair]
        # softmax per span; the shift by the span max only guards exp().
        span_max = torch.full(
            (n_spans,), float("-inf"), device=X.device, dtype=X.dtype
        ).scatter_reduce(0, span_of_pair, pair_logits.detach(), "amax")
        exp = torch.exp(pair_logits - span_max[span_of_pair])
        norm = X.new_zeros(n_spans).index_add(0, span_of_pair, exp)
        alpha = exp / norm[span_of_pair]
        weights = torch.sparse_coo_tensor(
            torch.stack([span_of_pair, token_of_pair]),
            alpha,
            (n_spans, X.shape[0]),
            check_invariants=False,
        )
        pooled = torch.sparse.mm(weights, self.pool_proj(X))
        return (
            pooled
            + self.start_proj(X)[starts]
            + self.end_proj(X)[ends - 1]
            + self.width_embed(width_buckets(widths))
        )
