"""The torch module behind `spanbert` against a plain, span-by-span reference
of the maths in DESIGN.md: the token-level computation (one weighted gather
for the span representation, blocked and fused attention, chunks for long
inputs) must give the same values and the same gradients."""

import pytest
import torch

from spacy_spanbert.layers.span_attention import LocalSpanAttention
from spacy_spanbert.layers.span_encoder_module import SpanEncoderModule
from spacy_spanbert.layers.span_representation import width_buckets


def _spans(doc_lengths, max_width):
    starts, ends, doc_ids, offset = [], [], [], 0
    for d, length in enumerate(doc_lengths):
        for s in range(length):
            for w in range(1, max_width + 1):
                if s + w <= length:
                    starts.append(offset + s)
                    ends.append(offset + s + w)
                    doc_ids.append(d)
        offset += length
    return torch.tensor(starts), torch.tensor(ends), torch.tensor(doc_ids)


def _reference_attention(layer, H, starts, doc_ids):
    """Each span attends to every span of its doc whose start is within the window."""
    n, h, d = H.shape[0], layer.n_heads, layer.d_head
    q, k, v = layer.qkv(H).view(n, 3, h, d).unbind(1)
    rows = []
    for i in range(n):
        near = (doc_ids == doc_ids[i]) & ((starts - starts[i]).abs() <= layer.window)
        scores = torch.einsum("hd,khd->hk", q[i], k[near]) / d**0.5
        rows.append(torch.einsum("hk,khd->hd", scores.softmax(-1), v[near]).reshape(-1))
    return layer.norm(H + layer.out(torch.stack(rows)))


def _reference(module, X, starts, ends, doc_ids, doc_starts, doc_ends):
    rep = module.represent
    logits = X @ rep.attention.weight[0]
    W_pool, W_start, W_end = rep.token_proj.weight.split(rep.n_out)
    out = []
    for s, e in zip(torch.cat([starts, doc_starts]).tolist(), torch.cat([ends, doc_ends]).tolist()):
        alpha = logits[s:e].softmax(0)
        x_hat = (alpha[:, None] * X[s:e]).sum(0)
        out.append(
            W_pool @ x_hat
            + W_start @ X[s]
            + W_end @ X[e - 1]
            + rep.width_embed(width_buckets(torch.tensor(e - s)))
            + rep.bias
        )
    out = torch.stack(out)
    H = out[: starts.shape[0]]
    for layer in module.layers:
        H = _reference_attention(layer, H, starts, doc_ids)
    return H, out[starts.shape[0] :]


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_module_matches_span_by_span_reference(n_layers):
    torch.manual_seed(0)
    module = SpanEncoderModule(24, 16, n_heads=4, n_layers=n_layers, window=3, dropout=0.0)
    for param in module.parameters():  # leave the identity-like initialization
        torch.nn.init.normal_(param, std=0.3)
    lengths = [13, 1, 30]
    starts, ends, doc_ids = _spans(lengths, 5)
    doc_starts, doc_ends = torch.tensor([0, 13, 14]), torch.tensor([13, 14, 44])
    X = torch.randn(sum(lengths), 24, requires_grad=True)
    H, D = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
    H0, D0 = _reference(module, X, starts, ends, doc_ids, doc_starts, doc_ends)
    torch.testing.assert_close(H, H0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(D, D0, rtol=1e-4, atol=1e-5)
    probe = torch.randn_like(H)
    params = [X] + list(module.parameters())
    grads = torch.autograd.grad((H * probe).sum() + D.sum(), params)
    grads0 = torch.autograd.grad((H0 * probe).sum() + D0.sum(), params)
    for g, g0 in zip(grads, grads0):
        torch.testing.assert_close(g, g0, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("n_layers", [0, 1])
def test_module_inference_matches_span_by_span_reference(n_layers):
    """In eval mode without gradient (the pipeline's `predict`) the values
    are the reference's too."""
    torch.manual_seed(0)
    module = SpanEncoderModule(24, 16, n_heads=4, n_layers=n_layers, window=3, dropout=0.5)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=0.3)
    lengths = [13, 1, 30]
    starts, ends, doc_ids = _spans(lengths, 5)
    doc_starts, doc_ends = torch.tensor([0, 13, 14]), torch.tensor([13, 14, 44])
    X = torch.randn(sum(lengths), 24)
    module.eval()  # dropout off, as in the reference
    with torch.no_grad():
        H0, D0 = _reference(module, X, starts, ends, doc_ids, doc_starts, doc_ends)
        H, D = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
    torch.testing.assert_close(H, H0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(D, D0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("block_size", [64, 8, 1, 500])
def test_attention_block_size_does_not_change_values(block_size):
    """Queries are cut into blocks; the result must not depend on their size."""
    torch.manual_seed(1)
    starts, _, doc_ids = _spans([40, 7, 25], 4)
    H = torch.randn(starts.shape[0], 16)
    layer = LocalSpanAttention(16, 2, window=4, block_size=block_size)
    torch.nn.init.normal_(layer.out.weight, std=0.3)
    layer.eval()
    with torch.no_grad():
        expected = _reference_attention(layer, H, starts, doc_ids)
        torch.testing.assert_close(layer(H, starts, doc_ids), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "lengths,max_width,window,block_size",
    [([1], 1, 4, 64), ([1, 1, 1, 5], 2, 0, 3), ([9, 30, 2], 4, 100, 8), ([50], 8, 8, 1), ([3, 70], 8, 2, 64)],
)
def test_attention_edge_cases_match_the_reference(lengths, max_width, window, block_size):
    """A single span, a zero window, a window wider than every doc, one-query
    blocks and docs of one token, with and without gradient."""
    torch.manual_seed(3)
    starts, _, doc_ids = _spans(lengths, max_width)
    H = torch.randn(starts.shape[0], 16)
    layer = LocalSpanAttention(16, 4, window=window, block_size=block_size)
    torch.nn.init.normal_(layer.out.weight, std=0.3)
    layer.eval()
    with torch.no_grad():
        expected = _reference_attention(layer, H, starts, doc_ids)
        got = layer(H, starts, doc_ids)
    with_grad = layer(H.clone().requires_grad_(True), starts, doc_ids)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(with_grad.detach(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_layers,chunk", [(0, 4), (1, 5), (2, 7), (2, 1000)])
def test_long_inputs_in_chunks_give_the_one_pass_values(monkeypatch, n_layers, chunk):
    """Inference on long inputs runs in chunks of span starts (bounded
    memory, linear time); the values must equal the one-pass computation,
    across doc boundaries."""
    import spacy_spanbert.layers.span_encoder_module as sem

    torch.manual_seed(2)
    module = SpanEncoderModule(12, 8, n_heads=2, n_layers=n_layers, window=3, dropout=0.1)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=0.3)
    module.eval()
    lengths = [17, 2, 30, 9]
    starts, ends, doc_ids = _spans(lengths, 4)
    doc_starts, doc_ends = torch.tensor([0, 17, 19, 49]), torch.tensor([17, 19, 49, 58])
    X = torch.randn(sum(lengths), 12)
    with torch.no_grad():
        monkeypatch.setattr(sem, "CHUNK_TOKENS", 10**9)
        H0, D0 = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
        monkeypatch.setattr(sem, "CHUNK_TOKENS", chunk)
        H, D = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
    torch.testing.assert_close(H, H0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(D, D0)
