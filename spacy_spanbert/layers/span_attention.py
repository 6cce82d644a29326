"""Local span-to-span multi-head attention.

    H' = LayerNorm(H + softmax(Q K^T / sqrt(d_k)) V W_o)

Each span attends only to spans of the same doc whose start lies within
`window` tokens of its own start. The spans come sorted by start (the span
encoder's candidates are canonical: sorted within each doc, docs in order,
offsets global) and are cut into blocks of `block_size` queries; each block
gets the contiguous range of keys its window can reach, so the score tensor
is `[n_blocks, heads, block, keys]` with `keys ~ block_size + 2 * window *
spans_per_token`: linear in doc length. W_o starts at zero, so an untrained
layer only normalises.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


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

    def forward(
        self, H: torch.Tensor, starts: torch.Tensor, doc_ids: torch.Tensor, qkv: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """H: [n, width] span vectors; starts: [n] global token offsets,
        non-decreasing; doc_ids: [n]; qkv: [n, 3 * width] `self.qkv(H)` when
        the caller has it already (see SpanEncoderModule._spans). Returns
        [n, width]."""
        n = H.shape[0]
        if n == 0:
            return H
        C = self.block_size
        n_blocks = (n + C - 1) // C
        # Block b holds queries [b C, b C + C); its keys are the spans
        # lo[b]..hi[b] - 1 that its window can reach. A query index past the
        # end repeats the last span, a key past hi[b] is masked by doc id -1.
        q_idx = torch.arange(n_blocks * C, device=H.device).view(n_blocks, C).clamp(max=n - 1)
        lo = torch.searchsorted(starts, starts[q_idx[:, 0]] - self.window, right=False)
        hi = torch.searchsorted(starts, starts[q_idx[:, -1]] + self.window, right=True)
        n_keys = int((hi - lo).max().item())
        k_idx = lo.unsqueeze(1) + torch.arange(n_keys, device=H.device)
        k_valid = k_idx < hi.unsqueeze(1)
        k_idx = k_idx.clamp(max=n - 1)
        k_doc = torch.where(k_valid, doc_ids[k_idx], -1)
        if qkv is None:
            qkv = self.qkv(H)
        q, k, v = qkv.view(n, 3, self.n_heads, self.d_head).unbind(1)
        mask = (doc_ids[q_idx].unsqueeze(2) == k_doc.unsqueeze(1)) & (
            (starts[q_idx].unsqueeze(2) - starts[k_idx].unsqueeze(1)).abs() <= self.window
        )
        attended = F.scaled_dot_product_attention(
            q[q_idx].transpose(1, 2),
            k[k_idx].transpose(1, 2),
            v[k_idx].transpose(1, 2),
            attn_mask=mask.unsqueeze(1),
            dropout_p=self.dropout.p if self.training else 0.0,
        )  # [b, h, C, d]
        attended = attended.transpose(1, 2).reshape(n_blocks * C, self.width)[:n]
        return self.norm(H + self.dropout(self.out(attended)))
