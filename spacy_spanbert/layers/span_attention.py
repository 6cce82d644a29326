"""Local span-to-span multi-head attention.

    H' = LayerNorm(H + softmax(Q K^T / sqrt(d_k)) V W_o)

Each span attends only to spans of the same doc whose start lies within
`window` tokens of its own start. Spans are sorted by start and cut into
blocks of `block_size` queries; each block gets the contiguous range of keys
its window can reach, so the score tensor is `[n_blocks, heads, block, keys]`
with `keys ~ block_size + 2 * window * spans_per_token`: linear in doc length.
In inference the keys of all blocks are one strided view of the padded
keys (no copy per block), and blocks are processed in groups to bound peak
memory; in training they are gathered, whose backward is cheaper.
W_o starts at zero, so an untrained layer only normalises.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class LocalSpanAttention(nn.Module):
    def __init__(
        self,
        width: int,
        n_heads: int,
        window: int,
        dropout: float = 0.0,
        block_size: int = 64,
        blocks_per_step: int = 256,
    ):
        super().__init__()
        self.width = width
        self.n_heads = n_heads
        self.d_head = width // n_heads
        self.window = window
        self.block_size = block_size
        self.blocks_per_step = blocks_per_step
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(
        self,
        H: torch.Tensor,
        starts: torch.Tensor,
        doc_ids: torch.Tensor,
        qkv: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """H: [n, width] span vectors; starts: [n] token offsets that are
        increasing across docs (global offsets); doc_ids: [n]; qkv: [n, 3 *
        width], `self.qkv(H)` when the caller computed it more cheaply.
        Returns [n, width]."""
        n = H.shape[0]
        if n == 0:
            return H
        # Candidates usually come sorted by start (the suggesters' rows are
        # canonical, docs in order): then no permutation is applied or undone.
        order = None
        if n > 1 and bool((starts[1:] < starts[:-1]).any()):
            order = torch.sort(starts, stable=True).indices
        Hs = H if order is None else H[order]
        st = starts if order is None else starts[order]
        docs = doc_ids if order is None else doc_ids[order]
        if qkv is None:
            qkv = self.qkv(Hs)
        elif order is not None:
            qkv = qkv[order]
        qkv = qkv.view(n, 3, self.n_heads, self.d_head)
        C = self.block_size
        n_blocks = (n + C - 1) // C
        # Block b holds queries [b C, b C + C) of the sorted spans; its keys
        # are the spans lo[b]..hi[b] - 1 that its window can reach.
        block_first = torch.arange(0, n_blocks * C, C, device=H.device)
        block_last = (block_first + C - 1).clamp(max=n - 1)
        lo = torch.searchsorted(st, st[block_first] - self.window, right=False)
        hi = torch.searchsorted(st, st[block_last] + self.window, right=True)
        if torch.is_grad_enabled():
            blocks = self._gathered_blocks(qkv, st, docs, lo, hi)
            step = n_blocks
        else:
            blocks = self._strided_blocks(qkv, st, docs, lo, hi)
            step = self.blocks_per_step
        outputs = []
        for b0 in range(0, n_blocks, step):
            outputs.append(self._attend(*(x[b0 : b0 + step] for x in blocks)))
        attended = torch.cat(outputs, 0)[:n]
        result = self.norm(Hs + self.dropout(self.out(attended)))
        if order is None:
            return result
        unsorted = torch.empty_like(result)
        unsorted[order] = result
        return unsorted

    def _gathered_blocks(self, qkv, st, docs, lo, hi):
        """The blocks' queries, keys and values gathered into new tensors
        (a query past the end repeats the last one; keys past `hi` are masked
        by a doc id of -1). Used in training, where the gathers' backward is
        cheaper than that of the strided views.
        RETURNS: q [b, h, C, d], k and v [b, h, K, d], the query starts and
        doc ids [b, C], the key starts and doc ids [b, K]."""
        n = qkv.shape[0]
        n_blocks = lo.shape[0]
        C = self.block_size
        q_idx = torch.arange(n_blocks * C, device=qkv.device).view(n_blocks, C).clamp(max=n - 1)
        n_keys = int((hi - lo).max().item())
        k_idx = lo.unsqueeze(1) + torch.arange(n_keys, device=qkv.device)
        k_valid = k_idx < hi.unsqueeze(1)
        k_idx = k_idx.clamp(max=n - 1)
        k_doc = torch.where(k_valid, docs[k_idx], -1)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        return (
            q[q_idx].transpose(1, 2),
            k[k_idx].transpose(1, 2),
            v[k_idx].transpose(1, 2),
            st[q_idx],
            docs[q_idx],
            st[k_idx],
            k_doc,
        )

    def _strided_blocks(self, qkv, st, docs, lo, hi):
        """`_gathered_blocks` without copying any key or value: block b sees
        the padded keys [b C - before, b C + C + after), a sliding window
        taken as a strided view (`unfold`), where `before` and `after` are the
        farthest any block's window reaches past its own queries. Padding rows
        belong to no doc (-1), so real spans never see them, and a padding
        query sees the padding keys of its own block (zeros), so no row of
        the softmax is empty. Used in inference (7-33% less time for the
        layer on 1 to 64 short docs, measured; in training the views'
        backward cost more than the gathers')."""
        n = qkv.shape[0]
        n_blocks = lo.shape[0]
        C = self.block_size
        h, d = self.n_heads, self.d_head
        block_first = torch.arange(0, n_blocks * C, C, device=qkv.device)
        before = int((block_first - lo).max().item())
        after = max(int((hi - block_first - C).max().item()), 0)
        n_keys = C + before + after
        tail = n_blocks * C + after - n
        kv = qkv[:, 1:].reshape(n, 2 * self.width)
        kv = torch.cat([kv.new_zeros((before, kv.shape[1])), kv, kv.new_zeros((tail, kv.shape[1]))])
        kv = kv.unfold(0, n_keys, C)  # [b, 2 * width, K], a view
        k = kv[:, : self.width].reshape(n_blocks, h, d, n_keys).transpose(2, 3)
        v = kv[:, self.width :].reshape(n_blocks, h, d, n_keys).transpose(2, 3)
        q = torch.cat([qkv[:, 0].reshape(n, self.width), qkv.new_zeros((n_blocks * C - n, self.width))])
        q = q.view(n_blocks, C, h, d).transpose(1, 2)
        st_pad = torch.cat([st.new_zeros(before), st, st.new_zeros(tail)])
        doc_pad = torch.cat([docs.new_full((before,), -1), docs, docs.new_full((tail,), -1)])
        q_span = slice(before, before + n_blocks * C)
        return (
            q,
            k,
            v,
            st_pad[q_span].view(n_blocks, C),
            doc_pad[q_span].view(n_blocks, C),
            st_pad.unfold(0, n_keys, C),
            doc_pad.unfold(0, n_keys, C),
        )

    def _attend(self, q, k, v, q_st, q_doc, k_st, k_doc):
        """Attention within each block: q [b, h, C, d], k and v [b, h, K, d],
        query starts and doc ids [b, C], key starts and doc ids [b, K]; a
        query sees the keys of its own doc within the window.
        RETURNS: [b * C, width]."""
        n_blocks, _, C, _ = q.shape
        mask = (q_doc.unsqueeze(2) == k_doc.unsqueeze(1)) & (
            (q_st.unsqueeze(2) - k_st.unsqueeze(1)).abs() <= self.window
        )
        # Fused softmax(q k^T / sqrt(d) + mask) v: about twice as fast on CPU
        # as the three separate steps, and no [b, h, C, K] score tensor is
        # kept for the backward pass by this module.
        attended = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask.unsqueeze(1),
            dropout_p=self.dropout.p if self.training else 0.0,
        )  # [b, h, C, d]
        return attended.transpose(1, 2).reshape(n_blocks * C, self.width)
