"""The PyTorch module behind `spacy-spanbert.SpanEncoder.v1`, and the thinc
shim that creates it once the input width is known and saves it without
pickle (safetensors)."""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .span_attention import LocalSpanAttention
from .span_representation import N_WIDTH_BUCKETS, SpanRepresentation
from .torch_shim import ConfiguredTorchShim

# Inference on inputs longer than this (tokens in one batch) runs in chunks of
# span starts of this size; see `SpanEncoderModule._spans_in_chunks`.
CHUNK_TOKENS = 2048
# Names the span encoder's weights in error messages.
WHAT = "spanbert: the saved span-encoder weights"


class SpanEncoderModule(nn.Module):
    """Token vectors -> span vectors (and one whole-doc vector per doc)."""

    def __init__(
        self,
        n_in: int,
        hidden_width: int,
        n_heads: int,
        n_layers: int,
        window: int,
        dropout: float,
    ):
        super().__init__()
        self.represent = SpanRepresentation(n_in, hidden_width, dropout=dropout)
        self.layers = nn.ModuleList(
            LocalSpanAttention(hidden_width, n_heads, window, dropout=dropout) for _ in range(n_layers)
        )

    def forward(
        self,
        X: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        doc_ids: torch.Tensor,
        doc_starts: torch.Tensor,
        doc_ends: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """X: [n_tokens, n_in] token vectors of the batch; starts, ends,
        doc_ids: [n_spans] candidate spans in global token offsets, sorted by
        start; doc_starts, doc_ends: [n_docs] the whole-doc spans.
        RETURNS: ([n_spans, hidden_width] span vectors, [n_docs, hidden_width]
        whole-doc vectors)."""
        logits, table = self.represent.token_table(X)
        doc_vectors = self.represent.gather(self.represent.bags(logits, doc_starts, doc_ends), table)
        if starts.shape[0] == 0:
            return X.new_zeros((0, self.represent.n_out)), doc_vectors
        if not torch.is_grad_enabled() and X.shape[0] > CHUNK_TOKENS:
            return self._spans_in_chunks(logits, table, starts, ends, doc_ids), doc_vectors
        return self._spans(logits, table, starts, ends, doc_ids), doc_vectors

    def _spans(self, logits, table, starts, ends, doc_ids) -> torch.Tensor:
        """Represent the spans from the token-level logits and row table of
        `SpanRepresentation.token_table`, then apply the span-to-span layers."""
        bags = self.represent.bags(logits, starts, ends)
        if not self.layers:
            return self.represent.gather(bags, table)
        # A span vector is a weighted bag of table rows and the first layer's
        # QKV projection is linear, so QKV(H) = sum_r w_r (W table_r) + b:
        # the table's ~3 rows per token are projected instead of the ~8
        # spans per token, and one gather gives both H and QKV(H). Every
        # span takes exactly one width row (the table's last rows) with
        # weight 1, so b is added to those rows. The gather writes the
        # padded Q/K/V table of the layer's key blocks directly (empty bags
        # are zero rows).
        first = self.layers[0]
        blocks = first.blocks(starts)
        width = table.shape[1]
        projected = F.linear(table, first.qkv.weight)
        projected[-N_WIDTH_BUCKETS:] += first.qkv.bias
        padded_bags = self.represent.pad_bags(bags, blocks.before, blocks.n_rows - blocks.before - starts.shape[0])
        both = self.represent.gather(padded_bags, torch.cat([table, projected], dim=1))
        H = both[blocks.before : blocks.before + starts.shape[0], :width]
        H = first(H, starts, doc_ids, qkv=both[:, width:], blocks=blocks)
        for layer in self.layers[1:]:
            H = layer(H, starts, doc_ids)
        return H

    def _spans_in_chunks(self, logits, table, starts, ends, doc_ids) -> torch.Tensor:
        """Inference on long inputs, `CHUNK_TOKENS` tokens of span starts at
        a time, so the working set (per-span QKV, attention blocks) is
        bounded and time stays linear in length. A span's output depends only
        on spans starting within `window` tokens per layer, so each chunk is
        computed with a margin of `window * n_layers` tokens of starts on
        either side and only its own spans are kept: the values equal the
        one-pass computation. The spans come sorted by start."""
        margin = max((layer.window for layer in self.layers), default=0) * len(self.layers)
        n_tokens = logits.shape[0]
        width_rows = table[3 * n_tokens :]
        H = table.new_empty((starts.shape[0], self.represent.n_out))
        for c0 in range(int(starts[0]), int(starts[-1]) + 1, CHUNK_TOKENS):
            bounds = torch.tensor([c0, c0 + CHUNK_TOKENS, c0 - margin, c0 + CHUNK_TOKENS + margin])
            q0, q1, k0, k1 = (int(i) for i in torch.searchsorted(starts, bounds.to(starts.device)))
            if q0 == q1:
                continue
            # The chunk's own slice of the token rows, and the width rows.
            t0 = int(starts[k0])
            t1 = int(ends[k0:k1].max())
            chunk_table = torch.cat([table[3 * t0 : 3 * t1], width_rows])
            out = self._spans(logits[t0:t1], chunk_table, starts[k0:k1] - t0, ends[k0:k1] - t0, doc_ids[k0:k1])
            H[q0:q1] = out[q0 - k0 : q1 - k0]
        return H


class SpanEncoderShim(ConfiguredTorchShim):
    """The shim of `SpanEncoderModule`, built at initialization (when the
    width of the token vectors is known) and saved without pickle."""

    module_cls = SpanEncoderModule
    what = WHAT
