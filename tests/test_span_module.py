"""The torch module behind `spanbert` against a plain, span-by-span reference
of the maths in DESIGN.md: the fused token-level computation (one weighted
gather for the span representation, the first layer's query/key/value map
moved to the tokens, fused attention) must give the same values and the same
gradients."""
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
    """Inference writes the token projections straight into the row table
    (`token_table`) and reuses the bag index of a layout it has seen: the
    values must be the reference's, on the first call and on a repeat."""
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
        for _ in range(2):
            H, D = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
            torch.testing.assert_close(H, H0, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(D, D0, rtol=1e-4, atol=1e-5)


def test_token_table_is_the_row_table_of_the_token_parts():
    from spacy_spanbert.layers.span_representation import SpanRepresentation

    torch.manual_seed(2)
    rep = SpanRepresentation(12, 8).eval()
    for param in rep.parameters():
        torch.nn.init.normal_(param, std=0.5)
    X = torch.randn(7, 12)
    with torch.no_grad():
        logits, parts = rep.token_parts(X)
        got_logits, table = rep.token_table(X)
    torch.testing.assert_close(got_logits, logits)
    torch.testing.assert_close(table, rep.row_table(parts, rep.width_table()).detach())


def test_bag_index_cache_returns_bag_index_and_evicts_the_oldest():
    import numpy

    from spacy_spanbert.layers.span_representation import BagIndexCache, bag_index

    cache = BagIndexCache(size=2, max_spans=50)
    layouts = [_spans([n], 4)[:2] for n in (5, 6, 7)]
    layouts = [(s.numpy(), e.numpy()) for s, e in layouts]
    first = cache.get(*layouts[0], 5)
    for got, want in zip(first, bag_index(*layouts[0], 5)):
        numpy.testing.assert_array_equal(got, want)
    assert cache.get(*layouts[0], 5) is first  # a hit hands out the same arrays
    assert cache.get(*layouts[0], 9) is not first  # another table size is another key
    cache.get(*layouts[1], 6)
    cache.get(*layouts[2], 7)  # over size 2: the least recently used goes
    assert cache.get(*layouts[0], 5) is not first
    big = _spans([40], 4)[:2]
    big = (big[0].numpy(), big[1].numpy())
    assert big[0].shape[0] > 50
    assert cache.get(*big, 40) is not cache.get(*big, 40)  # too many spans: not kept


def test_attention_blocks_and_groups_do_not_change_values():
    """Queries are cut into blocks and, in inference, blocks into groups; the
    result must not depend on either size."""
    torch.manual_seed(1)
    starts, _, doc_ids = _spans([40, 7, 25], 4)
    H = torch.randn(starts.shape[0], 16)
    layer = LocalSpanAttention(16, 2, window=4)
    torch.nn.init.normal_(layer.out.weight, std=0.3)
    layer.eval()
    with torch.no_grad():
        expected = _reference_attention(layer, H, starts, doc_ids)
        for block_size, per_step in [(64, 256), (8, 3), (1, 1), (500, 1)]:
            layer.block_size, layer.blocks_per_step = block_size, per_step
            torch.testing.assert_close(layer(H, starts, doc_ids), expected, rtol=1e-4, atol=1e-5)



@pytest.mark.parametrize(
    "lengths,max_width,window,block_size",
    [([1], 1, 4, 64), ([1, 1, 1, 5], 2, 0, 3), ([9, 30, 2], 4, 100, 8), ([50], 8, 8, 1), ([3, 70], 8, 2, 64)],
)
def test_inference_and_training_paths_match_the_reference(lengths, max_width, window, block_size):
    """Inference takes each block's keys as a strided view of padded keys,
    training gathers them: both must give the reference values, with a
    single span, a zero window, a window wider than every doc, one-query
    blocks, docs of one token and spans out of order."""
    torch.manual_seed(3)
    starts, _, doc_ids = _spans(lengths, max_width)
    H = torch.randn(starts.shape[0], 16)
    layer = LocalSpanAttention(16, 4, window=window, block_size=block_size, blocks_per_step=2)
    torch.nn.init.normal_(layer.out.weight, std=0.3)
    layer.eval()
    with torch.no_grad():
        expected = _reference_attention(layer, H, starts, doc_ids)
        strided = layer(H, starts, doc_ids)
    gathered = layer(H.clone().requires_grad_(True), starts, doc_ids)
    torch.testing.assert_close(strided, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gathered.detach(), expected, rtol=1e-4, atol=1e-5)
    # Spans in any order: sorted by start inside, returned in their order.
    shuffle = torch.randperm(starts.shape[0])
    with torch.no_grad():
        shuffled = layer(H[shuffle], starts[shuffle], doc_ids[shuffle])
    torch.testing.assert_close(shuffled, expected[shuffle], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shuffled", [True, False])
@pytest.mark.parametrize("n_layers,chunk", [(0, 4), (1, 5), (2, 7), (2, 1000)])
def test_long_inputs_in_chunks_give_the_one_pass_values(monkeypatch, n_layers, chunk, shuffled):
    """Inference on long inputs runs in chunks of span starts (bounded
    memory, linear time); the values must equal the one-pass computation,
    across doc boundaries and in any span order."""
    import spacy_spanbert.layers.span_encoder_module as sem

    torch.manual_seed(2)
    module = SpanEncoderModule(12, 8, n_heads=2, n_layers=n_layers, window=3, dropout=0.1)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=0.3)
    module.eval()
    lengths = [17, 2, 30, 9]
    starts, ends, doc_ids = _spans(lengths, 4)
    if shuffled:  # sorted by start inside, returned in this order
        shuffle = torch.randperm(starts.shape[0])
        starts, ends, doc_ids = starts[shuffle], ends[shuffle], doc_ids[shuffle]
    doc_starts, doc_ends = torch.tensor([0, 17, 19, 49]), torch.tensor([17, 19, 49, 58])
    X = torch.randn(sum(lengths), 12)
    with torch.no_grad():
        monkeypatch.setattr(sem, "CHUNK_TOKENS", 10**9)
        H0, D0 = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
        monkeypatch.setattr(sem, "CHUNK_TOKENS", chunk)
        H, D = module(X, starts, ends, doc_ids, doc_starts, doc_ends)
    torch.testing.assert_close(H, H0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(D, D0)


def test_torch_gemm_same_values_as_blis():
    """The NER scorer runs its products through torch on CPU: same values
    and gradients as thinc's BLIS kernel, same parameters and format."""
    import numpy
    from thinc.api import Maxout

    from spacy_spanbert.util import TorchGemmOps, use_torch_gemm

    blis = Maxout(nO=8, nI=6, nP=2)
    blis.initialize()
    fast = use_torch_gemm(Maxout(nO=8, nI=6, nP=2))
    fast.initialize()
    fast.from_bytes(blis.to_bytes())
    assert isinstance(fast.ops, TorchGemmOps)
    X = numpy.random.default_rng(0).standard_normal((40, 6)).astype("float32")
    Y, backprop = blis.begin_update(X)
    Y2, backprop2 = fast.begin_update(X)
    numpy.testing.assert_allclose(Y2, Y, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(backprop2(Y.copy()), backprop(Y.copy()), rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(fast.get_grad("W"), blis.get_grad("W"), rtol=1e-5, atol=1e-5)
    ops = fast.ops
    frozen = X.copy()
    frozen.flags.writeable = False  # falls back to BLIS
    numpy.testing.assert_allclose(ops.gemm(frozen, X, trans2=True), X @ X.T, rtol=1e-5, atol=1e-5)
    out = numpy.zeros((6, 6), dtype="float32")
    assert ops.gemm(X, X, trans1=True, out=out) is out
    numpy.testing.assert_allclose(out, X.T @ X, rtol=1e-5, atol=1e-4)


def test_weights_saved_with_separate_projections_load_as_the_same_map():
    """Before the pooled/start/end blocks were stacked into `token_proj`, the
    state dict had `pool_proj` (with the bias), `start_proj`, `end_proj` and an
    attention bias (which the softmax cancels): such weights still load."""
    torch.manual_seed(0)
    module = SpanEncoderModule(24, 16, n_heads=4, n_layers=1, window=3, dropout=0.0)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=0.3)
    state = module.state_dict()
    pool, start, end = state.pop("represent.token_proj.weight").split(16)
    state["represent.pool_proj.weight"] = pool
    state["represent.start_proj.weight"] = start
    state["represent.end_proj.weight"] = end
    state["represent.pool_proj.bias"] = state.pop("represent.bias")
    state["represent.attention.bias"] = torch.tensor([0.7])
    loaded = SpanEncoderModule(24, 16, n_heads=4, n_layers=1, window=3, dropout=0.0)
    loaded.load_state_dict(state)  # strict: no key left over or missing
    starts, ends, doc_ids = _spans([9, 4], 3)
    args = (torch.randn(13, 24), starts, ends, doc_ids, torch.tensor([0, 9]), torch.tensor([9, 13]))
    for got, want in zip(loaded(*args), module(*args)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("lengths,max_width", [([13, 1, 30], 5), ([1], 1), ([300], 40)])
def test_cpu_bags_equal_the_torch_bags(lengths, max_width):
    """The CPU path does its index work in numpy; the torch path (used on GPU)
    must give the same rows, offsets and weights, and the same gradients."""
    from spacy_spanbert.layers.span_representation import SpanRepresentation

    torch.manual_seed(0)
    rep = SpanRepresentation(8, 8)
    starts, ends, _ = _spans(lengths, max_width)
    # a whole-doc span too, wider than the width buckets
    starts, ends = torch.cat([starts, torch.tensor([0])]), torch.cat([ends, torch.tensor([sum(lengths)])])
    logits = (torch.randn(sum(lengths)) * 30).requires_grad_()
    got, want = rep._bags_cpu(logits, starts, ends), rep._bags_torch(logits, starts, ends)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    torch.testing.assert_close(got[2], want[2])
    probe = torch.randn_like(got[2])
    (g,) = torch.autograd.grad((got[2] * probe).sum(), logits)
    (g0,) = torch.autograd.grad((want[2] * probe).sum(), logits)
    torch.testing.assert_close(g, g0)
    # without gradient (inference) the weights are computed in numpy
    with torch.no_grad():
        fast = rep._bags_cpu(logits.detach(), starts, ends)
    assert fast[0].tolist() == want[0].tolist() and fast[1].tolist() == want[1].tolist()
    torch.testing.assert_close(fast[2], want[2].detach())
