"""Local span-to-span multi-head attention.

    H' = LayerNorm(H + softmax(Q K^T / sqrt(d_k)) V W_o)

Each span attends only to spans of the same doc whose start lies within
`window` tokens of its own start. The spans come sorted by start (the span
encoder's candidates are canonical: sorted within each doc, docs in order,
offsets global) and are cut into blocks of `block_size` queries. Block b
takes as keys the `block_size + before + after` consecutive spans from
`b * block_size - before` on, where `before` and `after` are the largest
reach of any block's window beyond its own queries (`KeyBlocks`); with the
spans padded by `before` rows in front and `after` behind, every block's
keys are a strided view of the same Q/K/V table (`Tensor.unfold`), so no key
is copied. The score tensor is `[n_blocks, heads, block, keys]`: linear in
doc length. W_o starts at zero, so an untrained layer only normalises.
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn


class KeyBlocks(NamedTuple):
    """How the spans are cut into query blocks and padded for their keys.

    block (int): Queries per block.
    n_blocks (int): Blocks.
    before (int): Padding rows in front of the spans.
    after (int): Padding rows behind the spans (and the last block's
        missing queries).
    """

    block: int
    n_blocks: int
    before: int
    after: int

    @property
    def n_keys(self) -> int:
        return self.block + self.before + self.after

    @property
    def n_rows(self) -> int:
        """Rows of the padded table."""
        return self.before + self.n_blocks * self.block + self.after

    def pad(self, values: torch.Tensor, fill: float = 0) -> torch.Tensor:
        """`values` ([n, ...]) with the padding rows added (filled with `fill`)."""
        n = values.shape[0]
        pad = (0, 0) * (values.dim() - 1) + (self.before, self.n_rows - self.before - n)
        return F.pad(values, pad, value=fill)

    def queries(self, padded: torch.Tensor) -> torch.Tensor:
        """[n_blocks, block, ...]: the query rows of a padded table (a view)."""
        rows = padded[self.before : self.before + self.n_blocks * self.block]
        return rows.unflatten(0, (self.n_blocks, self.block))

    def keys(self, padded: torch.Tensor) -> torch.Tensor:
        """[n_blocks, n_keys, ...]: each block's keys of a padded table (a view)."""
        return padded.unfold(0, self.n_keys, self.block).movedim(-1, 1)


def key_blocks(starts: torch.Tensor, window: int, block: int) -> KeyBlocks:
    """The blocks and padding for spans with non-decreasing `starts`."""
    n = starts.shape[0]
    n_blocks = (n + block - 1) // block
    first = torch.arange(0, n_blocks * block, block, device=starts.device)
    last = (first + block - 1).clamp(max=n - 1)
    lo = torch.searchsorted(starts, starts[first] - window, right=False)
    hi = torch.searchsorted(starts, starts[last] + window, right=True)
    before = int((first - lo).max())
    after = max(int((hi - first - block).max()), 0)
    return KeyBlocks(block, n_blocks, before, after)


class LocalSpanAttention(nn.Module):
    def __init__(self, width: int, n_heads: int, window: int, dropout: float = 0.0, block_size: int = 64):
        super().__init__()
        self.width = width
        self.n_heads = n_heads
        self.d_head = width // n_heads
        self.window = window
        self.block_size = block_size
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def blocks(self, starts: torch.Tensor) -> KeyBlocks:
        """The query blocks and key padding for spans with these starts."""
        return key_blocks(starts, self.window, self.block_size)

    def forward(
        self,
        H: torch.Tensor,
        starts: torch.Tensor,
        doc_ids: torch.Tensor,
        qkv: Optional[torch.Tensor] = None,
        blocks: Optional[KeyBlocks] = None,
    ) -> torch.Tensor:
        """H: [n, width] span vectors; starts: [n] global token offsets,
        non-decreasing; doc_ids: [n]. The caller may pass `blocks`
        (`self.blocks(starts)`) with `qkv`, `self.qkv(H)` already padded by
        `blocks.pad` (see SpanEncoderModule._spans). Returns [n, width]."""
        n = H.shape[0]
        if n == 0:
            return H
        if blocks is None or qkv is None:
            blocks = self.blocks(starts)
            qkv = blocks.pad(self.qkv(H))
        h, d = self.n_heads, self.d_head
        q, k, v = qkv.view(blocks.n_rows, 3, h, d).unbind(1)
        # Padding rows belong to doc -1 and start at 0: no span attends to
        # them, and a padding query (past the last span) attends to padding
        # keys only, so its (discarded) row stays finite.
        start_rows = blocks.pad(starts)
        doc_rows = blocks.pad(doc_ids, fill=-1)
        mask = (blocks.queries(doc_rows).unsqueeze(2) == blocks.keys(doc_rows).unsqueeze(1)) & (
            (blocks.queries(start_rows).unsqueeze(2) - blocks.keys(start_rows).unsqueeze(1)).abs() <= self.window
        )
        attended = F.scaled_dot_product_attention(
            blocks.queries(q).transpose(1, 2),
            blocks.keys(k).transpose(1, 2),
            blocks.keys(v).transpose(1, 2),
            attn_mask=mask.unsqueeze(1),
            dropout_p=self.dropout.p if self.training else 0.0,
        )  # [n_blocks, h, block, d]
        attended = attended.transpose(1, 2).reshape(blocks.n_blocks * blocks.block, self.width)[:n]
        return self.norm(H + self.dropout(self.out(attended)))
