"""The PyTorch module behind `spacy-spanbert.SpanEncoder.v1`, and the thinc
shim that creates it once the input width is known and saves it without
pickle (safetensors)."""
from typing import Any, Dict, Tuple

import hashlib
import srsly
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from thinc.api import PyTorchShim
from thinc.util import get_torch_default_device
from torch import nn

from .span_attention import LocalSpanAttention
from .span_representation import SpanRepresentation

# Inference on inputs longer than this (tokens in one batch) runs in chunks of
# span starts of this size; see `SpanEncoderModule._spans_in_chunks`.
CHUNK_TOKENS = 2048


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
            LocalSpanAttention(hidden_width, n_heads, window, dropout=dropout)
            for _ in range(n_layers)
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
        rep = self.represent
        n = starts.shape[0]
        grad = self.training or torch.is_grad_enabled()
        if n and (grad or X.shape[0] <= CHUNK_TOKENS):
            if grad:
                logits, parts = rep.token_parts(X)
                table = rep.row_table(parts, rep.width_table())
            else:
                logits, table = rep.token_table(X)
            # The whole-doc spans ride along with the candidates: one round of
            # index work instead of two, which counts at small batch sizes.
            return self._spans(
                logits, table, torch.cat([starts, doc_starts]), torch.cat([ends, doc_ends]), doc_ids
            )
        logits, parts = rep.token_parts(X)
        doc_reps = rep.combine(rep.bags(logits, doc_starts, doc_ends), parts, rep.width_table())
        if n == 0:
            return X.new_zeros((0, rep.n_out)), doc_reps
        return self._spans_in_chunks(logits, parts, starts, ends, doc_ids), doc_reps

    def _spans(self, logits, table, starts, ends, doc_ids) -> Tuple[torch.Tensor, torch.Tensor]:
        """Vectors of the spans `starts`, `ends` from the token-level row
        table (`SpanRepresentation.row_table` or `token_table`): the first
        `len(doc_ids)` are candidates and go through the span-to-span layers,
        any after them (the whole-doc spans) are returned as represented.
        RETURNS: (candidate vectors, the other spans' vectors)."""
        rep = self.represent
        n = doc_ids.shape[0]
        bags = rep.bags(logits, starts, ends)
        H_all = rep.gather(bags, table)
        H = H_all[:n]
        for i, layer in enumerate(self.layers):
            qkv = None
            if i == 0:
                # qkv(H) is affine in H, and H is linear in the table's rows:
                # map the table (3 rows per token and the width rows) instead
                # of the spans (about 8 per token). The bias goes on the width
                # rows, of which each span takes one with weight 1. Same
                # values; a fraction of the cost.
                n_width = rep.width_embed.weight.shape[0]
                qkv_table = torch.matmul(table, layer.qkv.weight.t())
                qkv_table[table.shape[0] - n_width :] += layer.qkv.bias
                qkv = rep.gather(bags, qkv_table)[:n]
            H = layer(H, starts[:n], doc_ids, qkv=qkv)
        return H, H_all[n:]

    def _spans_in_chunks(self, logits, parts, starts, ends, doc_ids) -> torch.Tensor:
        """Inference on long inputs, `CHUNK_TOKENS` tokens of span starts at
        a time, so the working set (per-span QKV, attention blocks) is
        bounded and time stays linear in length. A span's output depends only
        on spans starting within `window` tokens per layer, so each chunk is
        computed with a margin of `window * n_layers` tokens of starts on
        either side and only its own spans are kept: the values equal the
        one-pass computation. The token-level logits and parts are computed
        once for the whole input and sliced per chunk."""
        in_order = bool((starts[1:] >= starts[:-1]).all())
        if in_order:  # what the n-gram suggester gives: no permutation needed
            st, en, docs = starts, ends, doc_ids
        else:
            order = torch.sort(starts, stable=True).indices
            st, en, docs = starts[order], ends[order], doc_ids[order]
        margin = max((layer.window for layer in self.layers), default=0) * len(self.layers)
        width_table = self.represent.width_table()
        H = parts.new_empty((st.shape[0], self.represent.n_out))
        first, last = int(st[0]), int(st[-1])
        for c0 in range(first, last + 1, CHUNK_TOKENS):
            c1 = c0 + CHUNK_TOKENS
            q0, q1 = (int(i) for i in torch.searchsorted(st, torch.tensor([c0, c1], device=st.device)))
            if q0 == q1:
                continue
            k0, k1 = (
                int(i)
                for i in torch.searchsorted(st, torch.tensor([c0 - margin, c1 + margin], device=st.device))
            )
            t0 = int(st[k0])
            t1 = int(en[k0:k1].max())
            table = self.represent.row_table(parts[t0:t1], width_table)
            out, _ = self._spans(logits[t0:t1], table, st[k0:k1] - t0, en[k0:k1] - t0, docs[k0:k1])
            H[q0:q1] = out[q0 - k0 : q1 - k0]
        if in_order:
            return H
        result = torch.empty_like(H)
        result[order] = H
        return result


class SpanEncoderShim(PyTorchShim):
    """A PyTorchShim whose module is built at initialization (when the width
    of the token vectors is known) and serialized as safetensors plus a JSON
    config, so that loading a pipeline never unpickles anything."""

    def build(self, cfg: Dict[str, Any]) -> None:
        self.cfg = dict(cfg)
        module = SpanEncoderModule(**self.cfg)
        self._model = module.to(get_torch_default_device())
        self._device = None

    @property
    def device(self):
        """The module's device, found once per build or move: thinc's
        property walks the module's parameters on every call (every batch)."""
        if getattr(self, "_device", None) is None:
            self._device = super().device
        return self._device

    @property
    def is_built(self) -> bool:
        return self._model is not None

    def to_bytes(self) -> bytes:
        if self._model is None:
            return srsly.msgpack_dumps({"config": None, "state": b""})
        state = {k: v.detach().contiguous().cpu() for k, v in self._model.state_dict().items()}
        payload = save_safetensors(state)
        return srsly.msgpack_dumps(
            {"config": self.cfg, "state": payload, "sha256": hashlib.sha256(payload).hexdigest()}
        )

    def from_bytes(self, bytes_data: bytes) -> "SpanEncoderShim":
        try:
            msg = srsly.msgpack_loads(bytes_data)
        except Exception:
            msg = None
        if not isinstance(msg, dict) or "config" not in msg or "state" not in msg:
            raise ValueError(
                "spanbert: the saved span-encoder weights are not in the expected "
                "format (msgpack with 'config' and safetensors 'state'). Re-save "
                "the pipeline with this version of spacy-spanbert."
            )
        if msg["config"] is None:
            self._model = None
            return self
        state_bytes = msg["state"]
        expected = msg.get("sha256")
        if not isinstance(state_bytes, bytes) or not isinstance(msg["config"], dict):
            raise ValueError(
                "spanbert: the saved span-encoder weights are malformed. Re-train or "
                "re-save the pipeline."
            )
        if expected is not None and hashlib.sha256(state_bytes).hexdigest() != expected:
            raise ValueError(
                "spanbert: the saved span-encoder weights fail their checksum: the file "
                "is corrupt or was modified after saving. Re-train or re-save the pipeline."
            )
        self.build(msg["config"])
        try:
            state = load_safetensors(state_bytes)
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(
                f"spanbert: the saved span-encoder weights could not be read as "
                f"safetensors ({err}). The file is corrupt or was tampered with; "
                f"re-train or re-save the pipeline."
            ) from None
        try:
            self._model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"spanbert: the saved span-encoder weights do not match the saved "
                f"configuration ({err}). Re-train or re-save the pipeline."
            ) from None
        return self

    def predict(self, inputs):
        """Like PyTorchShim.predict, but the module is switched to eval mode
        only when it is not in it already, and left there (`begin_update`
        switches to train mode itself): thinc's version switches both ways on
        every call, which walks the module tree twice per batch (40-60
        microseconds per call here, 2-3% of `spanbert` on a one-doc batch)."""
        if self._model.training:
            self._model.eval()
        with torch.no_grad():
            if self._mixed_precision:
                with torch.autocast(device_type="cuda", enabled=True):
                    return self._model(*inputs.args, **inputs.kwargs)
            return self._model(*inputs.args, **inputs.kwargs)

    def to_device(self, device_type: str, device_id: int) -> None:
        if self._model is not None:
            super().to_device(device_type, device_id)
        self._device = None

    def finish_update(self, optimizer) -> None:
        if self._model is not None:
            super().finish_update(optimizer)
