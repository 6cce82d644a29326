"""The PyTorch module behind `spacy-spanbert.RelationClassifier.v1`, and the
thinc shim that builds it once the span width and the number of labels are
known and saves it without pickle (safetensors, through serialize.py).

For a pair (i, j) with pair representation `r_ij` (layers/span_pairs.py) and
the candidate spans `k` lying strictly between the two arguments:

    q_ij = W_q r_ij                      a query per pair
    a_k  = softmax_k(q_ij . W_k g_k / sqrt(width))
    c_ij = sum_k a_k g_k                 (zeros when nothing lies between)
    logits_ij = W_2 GELU(W_1 [r_ij ; c_ij])     one logit per label

SpERT max-pools the in-between context; attention weighs the spans instead,
so that the weights show which span carried the relation. The context is
computed over (pair, span) index rows, so its cost is the number of such rows:
at most pairs x (max_distance x the suggester's widest span).

`r_ij` itself is never built: `W_q r_ij` and the `r_ij` block of
`W_1 [r_ij ; c_ij]` are summed from per-span terms (span_pairs.py), and the
`c_ij` block of `W_1` is added to the latter.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .span_pairs import PairRepresentation
from .torch_shim import ConfiguredTorchShim

# Names the relation head's weights in error messages.
WHAT = "spanbert_rel: the saved relation-classifier weights"


class RelationModule(nn.Module):
    """Span vectors + pairs -> one logit per relation label and pair.

    width (int): Width of the span vectors.
    n_labels (int): Number of relation labels.
    hidden_width (int): Width of the hidden layer of the output MLP.
    feature_width (int): Width of the distance and width embeddings.
    dropout (float): Dropout rate before the output layer.
    """

    def __init__(self, width: int, n_labels: int, hidden_width: int, feature_width: int, dropout: float):
        super().__init__()
        self.width = width
        self.pairs = PairRepresentation(width, feature_width)
        self.query = nn.Linear(self.pairs.n_out, width)
        self.key = nn.Linear(width, width)
        self.output = nn.Sequential(
            nn.Linear(self.pairs.n_out + width, hidden_width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_width, n_labels),
        )

    def forward(
        self,
        G: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        heads: torch.Tensor,
        tails: torch.Tensor,
        context_pairs: torch.Tensor,
        context_rows: torch.Tensor,
    ) -> torch.Tensor:
        """G: [n_spans, width] span vectors; starts, ends: [n_spans] their
        token offsets (one numbering per doc: pairs never cross docs); heads,
        tails: [n_pairs] rows of G; context_pairs, context_rows: [n_context]
        (pair, row of G) for each span between a pair's arguments.
        RETURNS: [n_pairs, n_labels] logits."""
        n_pair = self.pairs.n_out
        first = self.output[0]
        # W_q r_ij and the r_ij columns of W_1 in one pass: their weights
        # stacked, so the per-pair product term is computed once.
        weight = torch.cat([self.query.weight, first.weight[:, :n_pair]])
        bias = torch.cat([self.query.bias, first.bias])
        queries, hidden = self.pairs(G, (starts, ends), heads, tails, weight, bias).split(
            [self.width, first.out_features], dim=-1
        )
        context = self.context(queries, G, context_pairs, context_rows)
        # W_1 [r_ij ; c_ij] = (W_1 r_ij) + (the context columns of W_1) c_ij.
        hidden = hidden + context @ first.weight[:, n_pair:].T
        return self.output[1:](hidden)

    def context(
        self, queries: torch.Tensor, G: torch.Tensor, context_pairs: torch.Tensor, context_rows: torch.Tensor
    ) -> torch.Tensor:
        """Attention of each pair over its in-between spans (queries:
        [n_pairs, width], `q_ij`): a softmax per segment of the (pair, row)
        list, `context_pairs` sorted (as index_pairs gives them).
        RETURNS: [n_pairs, width]."""
        n_pairs = queries.shape[0]
        if context_pairs.shape[0] == 0:
            return G.new_zeros((n_pairs, self.width))
        # q . (W_k g + b_k) = (W_k^T q) . g + q . b_k: the key projection
        # moves to the pairs, fewer than the (pair, span) rows, and q . b_k is
        # the same for all spans of a pair, so the softmax cancels it.
        keys = (queries @ self.key.weight)[context_pairs]
        scores = (keys * G[context_rows]).sum(-1) / math.sqrt(self.width)
        best = torch.full((n_pairs,), -torch.inf, dtype=scores.dtype, device=scores.device)
        best = best.scatter_reduce(0, context_pairs, scores.detach(), reduce="amax")
        weights = torch.exp(scores - best[context_pairs])
        totals = scores.new_zeros((n_pairs,)).index_add(0, context_pairs, weights)
        weights = weights / totals[context_pairs]
        # The weighted sum per pair as one bag per pair over the rows of G
        # (a pair with no rows gets an empty bag: zeros).
        bags = torch.searchsorted(context_pairs, torch.arange(n_pairs, device=context_pairs.device))
        return F.embedding_bag(context_rows, G, bags, mode="sum", per_sample_weights=weights)


class RelationShim(ConfiguredTorchShim):
    """The shim of `RelationModule`, built at initialization (when the span
    width and the number of labels are known) and saved without pickle."""

    module_cls = RelationModule
    what = WHAT
