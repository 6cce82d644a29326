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
token-level rows. `w` starts
at zero (uniform attention = mean pooling) and `W` starts as an orthonormal
map on the pooled block and zero elsewhere, so an untrained encoder returns
mean-pooled token vectors and keeps their similarity structure.
"""

import threading
from collections import OrderedDict
from typing import Tuple

import numpy
import torch
import torch.nn.functional as F
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


def bag_index(starts: numpy.ndarray, ends: numpy.ndarray, n_tokens: int) -> Tuple[numpy.ndarray, ...]:
    """The integer part of `SpanRepresentation.bags` in numpy (int64 arrays):
    `rows` and `bag_offsets` for `embedding_bag`, and for each pooled item its
    span (`span_of_pair`), its token (`pair_tokens`) and its place in `rows`
    (`pool_items`), plus each span's first pooled item (`pool_first`).
    Laid out as in `bags`; needs at least one span."""
    starts = starts.astype("int64", copy=False)
    ends = ends.astype("int64", copy=False)
    n_spans = starts.shape[0]
    widths = ends - starts
    pool_end = numpy.cumsum(widths)
    pool_first = pool_end - widths
    bag_offsets = pool_first + 3 * numpy.arange(n_spans)
    n_pool = int(pool_end[-1])
    span_of_pair = numpy.repeat(numpy.arange(n_spans), widths)
    pair = numpy.arange(n_pool)
    pair_tokens = pair + (starts - pool_first)[span_of_pair]
    pool_items = pair + 3 * span_of_pair
    tail = bag_offsets + widths
    rows = numpy.empty(n_pool + 3 * n_spans, dtype="int64")
    rows[pool_items] = 3 * pair_tokens
    rows[tail] = 3 * starts + 1
    rows[tail + 1] = 3 * (ends - 1) + 2
    clamped = numpy.maximum(widths, 1)
    buckets = numpy.where(
        clamped <= 8, clamped - 1, 8 + numpy.floor(numpy.log2(clamped.astype("float32"))).astype("int64") - 3
    )
    rows[tail + 2] = 3 * n_tokens + numpy.minimum(buckets, N_WIDTH_BUCKETS - 1)
    return rows, bag_offsets, span_of_pair, pair_tokens, pool_items, pool_first


class BagIndexCache:
    """The last few results of `bag_index` in inference, by candidate layout.

    With the n-gram suggester a doc's candidates depend only on its length,
    so one-doc batches of recurring lengths (a stream of short texts) meet
    the same layout again and again, and the index arithmetic, about 20
    numpy calls, was the largest part of `bags` for them. Only layouts of up
    to `max_spans` spans are kept, `size` of them, least recently used
    dropped first. The arrays handed out are shared between calls: the
    callers only read them. A lock keeps the bookkeeping consistent when
    pipelines run in several threads.
    """

    def __init__(self, size: int = 32, max_spans: int = 2048) -> None:
        self.size = size
        self.max_spans = max_spans
        self._entries: "OrderedDict[Tuple[int, bytes, bytes], Tuple[numpy.ndarray, ...]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, starts: numpy.ndarray, ends: numpy.ndarray, n_tokens: int) -> Tuple[numpy.ndarray, ...]:
        """RETURNS (Tuple[numpy.ndarray, ...]): `bag_index(starts, ends, n_tokens)`."""
        if starts.shape[0] > self.max_spans:
            return bag_index(starts, ends, n_tokens)
        key = (n_tokens, starts.tobytes(), ends.tobytes())
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        found = bag_index(starts, ends, n_tokens)
        with self._lock:
            self._entries[key] = found
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return found


_INDEX_CACHE = BagIndexCache()


class SpanRepresentation(nn.Module):
    """The parameters: `attention` (w; no bias, as softmax ignores a shift),
    `token_proj` (W's pooled, start and end blocks stacked, [3 * n_out, n_in],
    so that the token-level parts are one matrix product with no per-call
    copy of the weights), `bias` (b) and `width_embed` (phi)."""

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

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the blocks were stacked (separate pool_proj,
        # start_proj, end_proj and an attention bias) load as the same map.
        old = [prefix + name + ".weight" for name in ("pool_proj", "start_proj", "end_proj")]
        if all(key in state_dict for key in old) and prefix + "token_proj.weight" not in state_dict:
            state_dict[prefix + "token_proj.weight"] = torch.cat([state_dict.pop(key) for key in old])
            state_dict[prefix + "bias"] = state_dict.pop(prefix + "pool_proj.bias")
            state_dict.pop(prefix + "attention.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def width_table(self) -> torch.Tensor:
        """RETURNS (torch.Tensor): [N_WIDTH_BUCKETS, n_out] width rows with the
        bias b added: every span takes exactly one width row with weight 1."""
        return self.width_embed.weight + self.bias

    def token_parts(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """X: [n_tokens, n_in]. Returns the attention logits [n_tokens] and the
        token projections [n_tokens, 3, n_out] (pool, start, end), from one
        matrix product with the three maps side by side."""
        X = self.dropout(X)
        logits = self.attention(X).squeeze(-1)
        parts = self.token_proj(X).view(X.shape[0], 3, self.n_out)
        return logits, parts

    def token_table(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Inference only (no gradient): the attention logits and the row
        table of `row_table(parts, width_table())` in one buffer, the token
        projections written into it by the matrix product itself instead of
        being copied there. Dropout is the identity, as in eval mode.

        X (torch.Tensor): [n_tokens, n_in] token vectors.
        RETURNS (Tuple[torch.Tensor, torch.Tensor]): [n_tokens] logits and the
            [3 * n_tokens + N_WIDTH_BUCKETS, n_out] table.
        """
        n = X.shape[0]
        table = X.new_empty((3 * n + N_WIDTH_BUCKETS, self.n_out))
        torch.mm(X, self.token_proj.weight.t(), out=table[: 3 * n].view(n, 3 * self.n_out))
        torch.add(self.width_embed.weight, self.bias, out=table[3 * n :])
        return torch.mv(X, self.attention.weight[0]), table

    def bags(
        self, logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One weighted bag per span over the rows of a table laid out as
        [pool, start, end part of token 0; ... of token 1; ...; width table]
        (see `combine`):
        the span's tokens with their softmax(logits) weights, its start
        token, its last token and its width bucket with weight 1.

        logits (torch.Tensor): [n_tokens] attention logits.
        starts, ends (torch.Tensor): [n_spans] (ends exclusive, > starts).
        RETURNS: (rows, bag offsets, weights) for `embedding_bag`.
        """
        if starts.device.type == "cpu" and starts.shape[0]:
            return self._bags_cpu(logits, starts, ends)
        return self._bags_torch(logits, starts, ends)

    def _bags_torch(
        self, logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`bags` in torch ops only, on the tensors' device (GPU)."""
        n_tokens = logits.shape[0]
        device = logits.device
        n_spans = starts.shape[0]
        widths = ends - starts
        # Bag of span s: its `widths[s]` tokens, then start, end and width rows.
        # Items are numbered span by span, so the p-th token item overall (of
        # span s) sits at item p + 3 * s, and its token is p + (starts[s] -
        # first token item of s). Index arithmetic is per span where possible:
        # per-item work is a handful of gathers, no masks.
        pool_end = torch.cumsum(widths, 0)
        pool_first = pool_end - widths
        bag_offsets = pool_first + 3 * torch.arange(n_spans, device=device)
        n_pool = int(pool_end[-1]) if n_spans else 0
        span_of_pair = torch.repeat_interleave(
            torch.arange(n_spans, device=device), widths, output_size=n_pool
        )
        pair = torch.arange(n_pool, device=device)
        pair_tokens = pair + (starts - pool_first)[span_of_pair]
        pool_items = pair + 3 * span_of_pair
        tail = bag_offsets + widths
        rows = torch.empty(n_pool + 3 * n_spans, dtype=starts.dtype, device=device)
        rows[pool_items] = 3 * pair_tokens
        rows[tail] = 3 * starts + 1
        rows[tail + 1] = 3 * (ends - 1) + 2
        rows[tail + 2] = 3 * n_tokens + width_buckets(widths)
        pair_logits = logits[pair_tokens]
        # softmax per span; the shift by the span max only guards exp().
        span_max = torch.full(
            (n_spans,), float("-inf"), device=device, dtype=logits.dtype
        ).scatter_reduce(0, span_of_pair, pair_logits.detach(), "amax")
        exp = torch.exp(pair_logits - span_max[span_of_pair])
        norm = logits.new_zeros(n_spans).index_add(0, span_of_pair, exp)
        alpha = exp / norm[span_of_pair]
        weights = logits.new_ones(rows.shape[0]).index_put((pool_items,), alpha)
        return rows, bag_offsets, weights

    def _bags_cpu(
        self, logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`bags` on the CPU: the same bags, with the integer index work (which
        needs no gradient) in numpy, whose calls cost about a microsecond
        against several for a torch op; it was most of `spanbert`'s time on
        one-doc batches. Only the softmax weights stay in torch."""
        if not logits.requires_grad:
            index = _INDEX_CACHE.get(starts.numpy(), ends.numpy(), logits.shape[0])
            return self._bags_numpy(logits.numpy(), index)
        index = bag_index(starts.numpy(), ends.numpy(), logits.shape[0])
        rows, bag_offsets, span_of_pair, pair_tokens, pool_items = (
            torch.from_numpy(a) for a in index[:5]
        )
        pair_logits = logits[pair_tokens]
        # softmax per span; the shift by the span max only guards exp().
        shift = numpy.maximum.reduceat(pair_logits.detach().numpy(), index[5])
        exp = torch.exp(pair_logits - torch.from_numpy(shift)[span_of_pair])
        norm = logits.new_zeros(starts.shape[0]).index_add(0, span_of_pair, exp)
        alpha = exp / norm[span_of_pair]
        weights = logits.new_ones(rows.shape[0]).index_put((pool_items,), alpha)
        return rows, bag_offsets, weights

    @staticmethod
    def _bags_numpy(
        logits: numpy.ndarray, index: Tuple[numpy.ndarray, ...]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`_bags_cpu` without gradient (inference): the softmax weights in
        numpy too, six array calls instead of six torch ops."""
        rows, bag_offsets, span_of_pair, pair_tokens, pool_items, pool_first = index
        pair_logits = logits[pair_tokens]
        exp = numpy.exp(pair_logits - numpy.maximum.reduceat(pair_logits, pool_first)[span_of_pair])
        weights = numpy.ones(rows.shape[0], dtype=logits.dtype)
        weights[pool_items] = exp / numpy.add.reduceat(exp, pool_first)[span_of_pair]
        return torch.from_numpy(rows), torch.from_numpy(bag_offsets), torch.from_numpy(weights)

    def combine(
        self,
        bags: Tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        parts: torch.Tensor,
        width_table: torch.Tensor,
    ) -> torch.Tensor:
        """Span vectors from token-level parts, in one fused weighted gather:
        `sum_t alpha_t parts[t, 0] + parts[start, 1] + parts[end - 1, 2] +
        width_table[bucket]`."""
        return self.gather(bags, self.row_table(parts, width_table))

    @staticmethod
    def row_table(parts: torch.Tensor, width_table: torch.Tensor) -> torch.Tensor:
        """The rows the bags index: [pool, start, end part of token 0; ... of
        token 1; ...; width table].

        Any linear map L applied to this table gives L applied to the span
        vectors, at the cost of tokens instead of spans: the first
        span-to-span layer uses this for its query/key/value map. Each bag
        takes exactly one width row, with weight 1, so a bias of an affine
        map goes on the width rows only."""
        return torch.cat([parts.reshape(-1, parts.shape[-1]), width_table])

    @staticmethod
    def gather(bags: Tuple[torch.Tensor, torch.Tensor, torch.Tensor], table: torch.Tensor) -> torch.Tensor:
        """One vector per bag: the weighted sum of its rows of `table`."""
        rows, bag_offsets, weights = bags
        return F.embedding_bag(rows, table, bag_offsets, mode="sum", per_sample_weights=weights)

    def forward(
        self, X: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> torch.Tensor:
        """X: [n_tokens, n_in]; starts, ends: [n_spans] (ends exclusive, > starts).
        Returns [n_spans, n_out]."""
        if starts.shape[0] == 0:
            return X.new_zeros((0, self.n_out))
        logits, parts = self.token_parts(X)
        bags = self.bags(logits, starts, ends)
        return self.combine(bags, parts, self.width_table())
