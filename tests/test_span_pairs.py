"""The pair MLPs' first layer (layers/span_pairs.py) is computed from
per-span terms instead of the explicit pair vector `r_ij`: against the
explicit concatenation followed by the same nn.Linear, the values and the
gradients (of the span vectors and of every parameter) must match, for the
coreference and the relation heads, with random weights."""

import pytest
import torch
from torch import nn

import spacy_spanbert.layers.coref_module as coref_module
from spacy_spanbert.layers.coref_module import MASKED, CorefModule
from spacy_spanbert.layers.relation_module import RelationModule
from spacy_spanbert.layers.span_pairs import PairRepresentation, distance_buckets, pair_distances
from spacy_spanbert.layers.span_representation import width_buckets

TOL = {"rtol": 1e-5, "atol": 1e-5}


def explicit_pairs(pairs: PairRepresentation, G, offsets, heads, tails):
    """`r_ij` built explicitly: [g_i ; g_j ; g_i * g_j ; phi_d ; phi_w(i) ; phi_w(j)]."""
    starts, ends = offsets
    widths = ends - starts
    g_i, g_j = G[heads], G[tails]
    return torch.cat(
        [
            g_i,
            g_j,
            g_i * g_j,
            pairs.distance_embed(distance_buckets(pair_distances(starts, ends, heads, tails))),
            pairs.width_embed(width_buckets(widths[heads])),
            pairs.width_embed(width_buckets(widths[tails])),
        ],
        dim=-1,
    )


def randomize(module: nn.Module, seed: int) -> None:
    """Random weights, not the initialization (biases and embeddings included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) / param.shape[-1] ** 0.5)


def spans(n_spans: int, n_tokens: int, seed: int):
    """Random span vectors and offsets (widths 1..40, so several width and
    distance buckets), the vectors requiring a gradient."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, n_tokens, (n_spans,), generator=gen)
    ends = starts + torch.randint(1, 40, (n_spans,), generator=gen)
    return starts, ends, gen


def grads(loss, tensors):
    """d loss / d tensors, zeros for a tensor the loss does not depend on."""
    found = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, found)]


def assert_same_grads(got, want):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **TOL)


@pytest.mark.parametrize(
    "width,feature_width,n_out",
    # coref: FFNN_a's first layer; rel: W_q and the r_ij columns of W_1 stacked
    [(24, 8, 16), (24, 8, 24 + 12)],
    ids=["coref", "rel"],
)
@pytest.mark.parametrize("n_pairs", [0, 1, 57])
def test_projected_pairs_match_explicit_linear(width, feature_width, n_out, n_pairs):
    pairs = PairRepresentation(width, feature_width)
    layer = nn.Linear(pairs.n_out, n_out)
    randomize(pairs, 1)
    randomize(layer, 2)
    starts, ends, gen = spans(30, 300, n_pairs)
    G = torch.randn(30, width, generator=gen, requires_grad=True)
    heads = torch.randint(0, 30, (n_pairs,), generator=gen)
    tails = torch.randint(0, 30, (n_pairs,), generator=gen)
    params = [G, layer.weight, layer.bias, *pairs.parameters()]
    weights = torch.randn(n_pairs, n_out, generator=gen)

    got = pairs(G, (starts, ends), heads, tails, layer.weight, layer.bias)
    want = layer(explicit_pairs(pairs, G, (starts, ends), heads, tails))
    assert got.shape == want.shape == (n_pairs, n_out)
    torch.testing.assert_close(got, want, **TOL)
    assert_same_grads(grads((got * weights).sum(), params), grads((want * weights).sum(), params))


def test_projected_pairs_broadcast_rows():
    """`project` once, then [m, 1] heads against [m, k] tails (the coreference
    layout) gives the [m, k] grid of pairs."""
    pairs = PairRepresentation(16, 4)
    layer = nn.Linear(pairs.n_out, 10)
    randomize(pairs, 3)
    randomize(layer, 4)
    starts, ends, gen = spans(12, 100, 5)
    G = torch.randn(12, 16, generator=gen, requires_grad=True)
    heads = torch.arange(3, 9)[:, None]
    tails = torch.randint(0, 12, (6, 4), generator=gen)
    params = [G, layer.weight, layer.bias, *pairs.parameters()]
    weights = torch.randn(6, 4, 10, generator=gen)

    got = pairs.project(G, (starts, ends), layer.weight, layer.bias)(heads, tails)
    flat = explicit_pairs(pairs, G, (starts, ends), heads.expand(-1, 4).reshape(-1), tails.reshape(-1))
    want = layer(flat).view(6, 4, 10)
    torch.testing.assert_close(got, want, **TOL)
    assert_same_grads(grads((got * weights).sum(), params), grads((want * weights).sum(), params))


def reference_coref_scores(module: CorefModule, G, starts, ends, kept, ants):
    """Column 0 the dummy (0), then s_m(i) + s_m(j) + g_i W_c g_j + FFNN_a(r_ij)
    for every filled antecedent slot (MASKED for the empty ones), with `r_ij`
    built explicitly."""
    scores_m = module.mention(G).squeeze(-1)
    Gk, sk = G[kept], scores_m[kept]
    n, width = ants.shape
    heads = torch.arange(n)[:, None].expand(-1, width).reshape(-1)
    tails = ants.clamp(min=0).reshape(-1)
    r = explicit_pairs(module.pairs, Gk, (starts[kept], ends[kept]), heads, tails)
    coarse = (module.coarse(Gk)[heads] * Gk[tails]).sum(-1) + sk[heads] + sk[tails]
    full = (coarse + module.antecedent(r).squeeze(-1)).view(n, width)
    full = torch.where(ants >= 0, full, torch.full_like(full, MASKED))
    return scores_m, torch.cat([full.new_zeros((n, 1)), full], dim=1)


@pytest.mark.parametrize(
    "span_lengths,doc_lengths,row_chunk",
    [
        ([40, 25], [60, 30], 256),  # two docs; every doc's first mention has no antecedent
        ([40, 25], [60, 30], 5),  # blocks of 5 kept mentions, windows reaching back into earlier blocks
        ([1], [1], 256),  # one mention: no pair at all
        ([0, 6], [4, 2], 256),  # a doc without candidates (0 pairs), then a doc of one kept mention
        ([3, 120], [3, 200], 256),  # 1 then 80 kept mentions, antecedents clipped by the window
    ],
)
def test_coref_fine_scores_match_explicit_pairs(span_lengths, doc_lengths, row_chunk, monkeypatch):
    monkeypatch.setattr(coref_module, "ROW_CHUNK", row_chunk)
    width = 24
    module = CorefModule(width, hidden_width=12, feature_width=8, dropout=0.0)
    randomize(module, 6)
    module.eval()
    parts = [spans(n, max(t, 1), 7 + i) for i, (n, t) in enumerate(zip(span_lengths, doc_lengths))]
    starts = torch.cat([p[0] for p in parts])
    ends = torch.cat([p[1] for p in parts])
    G = torch.randn(sum(span_lengths), width, generator=torch.Generator().manual_seed(8), requires_grad=True)
    scores_m, kept, lengths, ants, scores = module(
        G,
        starts,
        ends,
        span_lengths,
        doc_lengths,
        mention_ratio=0.4,
        max_antecedents=6,
        antecedent_window=10,
    )
    assert lengths.tolist() == [min(n, max(1, int(0.4 * t))) for n, t in zip(span_lengths, doc_lengths)]
    first = 0
    for n in lengths.tolist():
        if n:
            assert (ants[first] == -1).all()  # the first mention of a doc has no antecedent
        first += n
    want_m, want = reference_coref_scores(module, G, starts, ends, kept, ants)
    torch.testing.assert_close(scores, want, **TOL)

    gen = torch.Generator().manual_seed(9)
    weights, weights_m = torch.randn(scores.shape, generator=gen), torch.randn(scores_m.shape, generator=gen)
    params = [G, *module.parameters()]
    got_grads = grads((scores * weights).sum() + (scores_m * weights_m).sum(), params)
    want_grads = grads((want * weights).sum() + (want_m * weights_m).sum(), params)
    assert_same_grads(got_grads, want_grads)


def reference_relation_logits(module: RelationModule, G, starts, ends, heads, tails, context_pairs, context_rows):
    """`W_2 GELU(W_1 [r_ij ; c_ij])` with `r_ij` built explicitly and the query `W_q r_ij`."""
    R = explicit_pairs(module.pairs, G, (starts, ends), heads, tails)
    Q = module.query(R)
    # c_ij = sum_k softmax_k(q_ij . (W_k g_k + b_k) / sqrt(width)) g_k, pair by pair
    rows = []
    for p in range(R.shape[0]):
        mine = context_rows[context_pairs == p]
        if not len(mine):
            rows.append(G.new_zeros(module.width))
            continue
        attention = (module.key(G[mine]) @ Q[p] / module.width**0.5).softmax(0)
        rows.append(attention @ G[mine])
    context = torch.stack(rows) if rows else G.new_zeros((0, module.width))
    return module.output(torch.cat([R, context], dim=-1))


@pytest.mark.parametrize("n_pairs,n_context", [(0, 0), (1, 0), (1, 3), (40, 0), (40, 90)])
def test_relation_logits_match_explicit_pairs(n_pairs, n_context):
    width = 24
    module = RelationModule(width, n_labels=5, hidden_width=12, feature_width=8, dropout=0.0)
    randomize(module, 10)
    module.eval()
    # 50 candidate spans, the pairs among the first 15 only (most spans are in no pair).
    starts, ends, gen = spans(50, 400, 11 + n_pairs)
    G = torch.randn(50, width, generator=gen, requires_grad=True)
    heads = torch.randint(0, 15, (n_pairs,), generator=gen)
    tails = torch.randint(0, 15, (n_pairs,), generator=gen)
    context_pairs = torch.sort(torch.randint(0, max(n_pairs, 1), (n_context,), generator=gen)).values
    context_rows = torch.randint(0, 50, (n_context,), generator=gen)
    args = (G, starts, ends, heads, tails, context_pairs, context_rows)

    got = module(*args)
    want = reference_relation_logits(module, *args)
    assert got.shape == want.shape == (n_pairs, 5)
    torch.testing.assert_close(got, want, **TOL)
    weights = torch.randn(n_pairs, 5, generator=gen)
    params = [G, *module.parameters()]
    assert_same_grads(grads((got * weights).sum(), params), grads((want * weights).sum(), params))


def test_saved_parameters_are_unchanged():
    """The first layers stay plain nn.Linear over `r_ij` (sliced at forward
    time), so pipelines saved before load unchanged."""
    coref = CorefModule(8, hidden_width=6, feature_width=2, dropout=0.1)
    rel = RelationModule(8, n_labels=3, hidden_width=6, feature_width=2, dropout=0.1)
    n = 3 * 8 + 3 * 2
    assert {k: tuple(v.shape) for k, v in coref.state_dict().items()} == {
        "mention.0.weight": (6, 8),
        "mention.0.bias": (6,),
        "mention.3.weight": (6, 6),
        "mention.3.bias": (6,),
        "mention.6.weight": (1, 6),
        "mention.6.bias": (1,),
        "coarse.weight": (8, 8),
        "pairs.distance_embed.weight": (16, 2),
        "pairs.width_embed.weight": (16, 2),
        "antecedent.0.weight": (6, n),
        "antecedent.0.bias": (6,),
        "antecedent.3.weight": (6, 6),
        "antecedent.3.bias": (6,),
        "antecedent.6.weight": (1, 6),
        "antecedent.6.bias": (1,),
    }
    assert {k: tuple(v.shape) for k, v in rel.state_dict().items()} == {
        "pairs.distance_embed.weight": (16, 2),
        "pairs.width_embed.weight": (16, 2),
        "query.weight": (8, n),
        "query.bias": (8,),
        "key.weight": (8, 8),
        "key.bias": (8,),
        "output.0.weight": (6, n + 8),
        "output.0.bias": (6,),
        "output.3.weight": (3, 6),
        "output.3.bias": (3,),
    }
