"""Registered model builders. They only compose layers:

transformer / tok2vec -> `SpanEncoder` (component `spanbert`) -> `SpanBertListener`
in each head -> `SpanClassifier` (`spanbert_ner`) or `SpanAttentionTextCat`
(`textcat`, `textcat_multilabel`, `spanbert_textcat*`); and `QuestionAnswerer`
(`spanbert_qa`), which owns its cross-encoder.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, LayerNorm, Linear, Maxout, Model, chain
from thinc.types import Floats1d, Floats2d, Ints1d, Ints2d, Ragged

from .data_classes import SpanBatch
from .errors import Errors, check_dropout, check_positive
from .layers.activation import cross_entropy_activation
from .layers.coref_scorer import CorefScores, coref_scorer
from .layers.label_attention import label_attention, resize_output, span_label_attention, textcat_init
from .layers.listener import SpanBertListener, replace_listener
from .layers.relation_classifier import relation_classifier
from .layers.span_classifier import span_classifier
from .layers.span_encoder import span_encoder
from .layers.torch_gemm import use_torch_gemm
from .qa.model import QABatch, qa_model
from .suggesters import build_ngram_suggester


@registry.architectures("spacy-spanbert.SpanEncoder.v1")
def build_span_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]],
    suggester: Optional[Callable] = None,
    hidden_width: Optional[int] = None,
    n_heads: int = 4,
    n_layers: int = 1,
    window: int = 8,
    dropout: float = 0.1,
) -> Model[List[Doc], SpanBatch]:
    """Token vectors -> span vectors: attention pooling, endpoints and width,
    projected to `hidden_width`, then `n_layers` of local span-to-span attention.

    tok2vec (Model[List[Doc], List[Floats2d]]): Token vectors, e.g.
        `spacy-transformers.TransformerListener.v1` or `spacy.Tok2VecListener.v1`.
    suggester (Optional[Callable]): Candidate spans; None for all spans of
        1 to 8 tokens.
    hidden_width (Optional[int]): Width of the span vectors; None (default)
        keeps the width of the token vectors.
    n_heads (int): Attention heads; must divide hidden_width.
    n_layers (int): Span-to-span attention layers (0 turns them off).
    window (int): A span attends to spans that start within this many tokens.
    dropout (float): Dropout rate, in [0, 1).
    RETURNS (Model[List[Doc], SpanBatch]): The encoder.
    """
    where = "spacy-spanbert.SpanEncoder.v1 (components.spanbert.model)"
    if hidden_width is not None:
        check_positive(where, "hidden_width", hidden_width)
    check_positive(where, "n_heads", n_heads)
    check_positive(where, "n_layers", n_layers, allow_zero=True)
    check_positive(where, "window", window, allow_zero=True)
    check_dropout(where, dropout)
    if hidden_width is not None and n_layers > 0 and hidden_width % n_heads:
        raise ValueError(Errors.E003.format(where=where, width=hidden_width, n_heads=n_heads))
    model = span_encoder(
        tok2vec,
        suggester if suggester is not None else build_ngram_suggester(1, 8),
        hidden_width=hidden_width,
        n_heads=n_heads,
        n_layers=n_layers,
        window=window,
        dropout=dropout,
    )
    model.attrs["replace_listener"] = replace_listener
    return model


@registry.architectures("spacy-spanbert.SpanBertListener.v1")
def build_span_bert_listener(width: Optional[int] = None, upstream: str = "*") -> Model[List[Doc], SpanBatch]:
    """Receive span vectors from an upstream `spanbert` component.

    width (Optional[int]): Width of the span vectors; None to take it from the
        upstream component when the pipeline is linked.
    upstream (str): Name of the `spanbert` component, or "*" for any.
    RETURNS (Model[List[Doc], SpanBatch]): The listener.
    """
    return SpanBertListener(upstream_name=upstream, width=width)


@registry.architectures("spacy-spanbert.SpanClassifier.v1")
def build_span_classifier(
    tok2vec: Optional[Model] = None,
    hidden_width: int = 64,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], Tuple[Ragged, Floats2d]]:
    """Score every candidate span of the span encoder: a Maxout layer (with
    layer normalization) then a linear layer to one logit per class. The
    classes are the component's labels in order, then "no entity" as the LAST
    column.

    tok2vec (Optional[Model[List[Doc], SpanBatch]]): Candidate spans and their
        vectors; None (default) for a `SpanBertListener` of any `spanbert`.
    hidden_width (int): Width of the hidden layer.
    dropout (float): Dropout rate of the hidden layer, in [0, 1).
    nO (Optional[int]): Number of classes (labels + 1); None to set it at
        initialization.
    RETURNS (Model[List[Doc], Tuple[Ragged, Floats2d]]): Candidate offsets and
        their logits.
    """
    where = "spacy-spanbert.SpanClassifier.v1"
    check_positive(where, "hidden_width", hidden_width)
    check_dropout(where, dropout)
    if tok2vec is None:
        tok2vec = SpanBertListener(upstream_name="*")
    hidden = Maxout(nO=hidden_width, nP=2)
    output = Linear(nO=nO, nI=hidden_width)
    # On CPU the scorer's matrix products run through torch (layers/torch_gemm.py).
    scorer = use_torch_gemm(chain(hidden, LayerNorm(nI=hidden_width), Dropout(dropout), output))
    scorer.set_ref("input", hidden)
    scorer.set_ref("output", output)
    return span_classifier(tok2vec, scorer, nO=nO)


@registry.architectures("spacy-spanbert.SpanAttentionTextCat.v1")
def build_span_attention_textcat(
    exclusive_classes: bool,
    tok2vec: Optional[Model] = None,
    nO: Optional[int] = None,
    dropout: float = 0.1,
) -> Model[List[Doc], Floats2d]:
    """Classify docs by letting each label attend over the doc's candidate
    spans, plus a linear term on the whole-doc vector.

    exclusive_classes (bool): Softmax over the labels (for `textcat`) if True,
        an independent sigmoid per label (for `textcat_multilabel`) if False.
        Either way it is trained with cross-entropy: the gradient the text
        classifier hands back (`scores - truths`) goes to the logits unchanged.
    tok2vec (Optional[Model]): The span vectors, usually
        `spacy-spanbert.SpanBertListener.v1`; None (default) listens to any
        `spanbert` component.
    nO (Optional[int]): Number of labels; None to infer it from the data.
    dropout (float): Dropout rate on the span and doc vectors, in [0, 1).
    RETURNS (Model[List[Doc], Floats2d]): One row of label scores per doc.
    """
    check_dropout("spacy-spanbert.SpanAttentionTextCat.v1", dropout)
    return _span_attention_textcat(label_attention(nO=nO, dropout=dropout), exclusive_classes, tok2vec, nO)


@registry.architectures("spacy-spanbert.SpanAttentionTextCat.v2")
def build_span_attention_textcat_v2(
    exclusive_classes: bool,
    tok2vec: Optional[Model] = None,
    nO: Optional[int] = None,
    dropout: float = 0.1,
    score_scale: float = 30.0,
) -> Model[List[Doc], Floats2d]:
    """Classify docs by letting each label attend over the doc's candidate
    spans; the logits depend on the spans only through each label's attended
    vector (`logit_l = w_l . sum_i softmax_i(g V q_l) V_i + b_l`), so the
    attention weights are the evidence the decision rests on. Unlike v1 there
    is no whole-doc term, the scores have a fixed gain `g` instead of
    1/sqrt(width), and the queries start at zero (uniform attention).

    exclusive_classes (bool): Softmax over the labels (for `textcat`) if True,
        an independent sigmoid per label (for `textcat_multilabel`) if False.
        Either way it is trained with cross-entropy.
    tok2vec (Optional[Model]): The span vectors, usually
        `spacy-spanbert.SpanBertListener.v1`; None (default) listens to any
        `spanbert` component.
    nO (Optional[int]): Number of labels; None to infer it from the data.
    dropout (float): Dropout rate on the span vectors, in [0, 1).
    score_scale (float): The gain `g` of the attention scores. The queries
        are trained by Adam, which moves them by about the learning rate per
        step whatever their gradient, so `g` sets how far the attention can
        leave uniform in a fine-tuning run (the default, 30, is chosen in
        benchmarks/README.md, Evidence).
    RETURNS (Model[List[Doc], Floats2d]): One row of label scores per doc.
    """
    where = "spacy-spanbert.SpanAttentionTextCat.v2"
    check_dropout(where, dropout)
    if isinstance(score_scale, bool) or not isinstance(score_scale, (int, float)) or not 0 < score_scale < float("inf"):
        raise ValueError(Errors.E044.format(where=where, value=score_scale))
    attention = span_label_attention(nO=nO, dropout=dropout, score_scale=score_scale)
    return _span_attention_textcat(attention, exclusive_classes, tok2vec, nO)


def _span_attention_textcat(
    attention: Model, exclusive_classes: bool, tok2vec: Optional[Model], nO: Optional[int]
) -> Model[List[Doc], Floats2d]:
    """listener >> label attention layer >> activation, with the refs and
    attrs the text classifiers use."""
    if tok2vec is None:
        tok2vec = SpanBertListener(upstream_name="*")
    activation = cross_entropy_activation(exclusive_classes)
    model = chain(tok2vec, attention, activation)
    model.init = textcat_init  # type: ignore[assignment]
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("label_attention", attention)
    model.set_ref("activation", activation)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = resize_output
    return model


@registry.architectures("spacy-spanbert.QuestionAnswerer.v1")
def build_question_answerer(
    name: str,
    do_lower_case: Optional[bool] = None,
    hidden_width: int = 128,
    dropout: float = 0.1,
    head_lr_scale: float = 5.0,
) -> Model[QABatch, Tuple[Floats1d, Floats1d]]:
    """A Hugging Face cross-encoder over `[CLS] question [SEP] context [SEP]`
    windows with a span scorer (the span representation of its token states
    and a linear layer) and a no-answer scorer (a linear layer on `[CLS]`).

    name (str): A Hugging Face model name or folder (a pretrained folder
        works); loaded at initialize and saved with the pipeline.
    do_lower_case (Optional[bool]): Lowercase for the tokenizer; None keeps
        the tokenizer config's (SpanBERT checkpoints ship none: set it).
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout rate, in [0, 1).
    head_lr_scale (float): Train the span and no-answer scorers at this
        multiple of the component's learning rate (the encoder keeps it).
    RETURNS (Model[QABatch, Tuple[Floats1d, Floats1d]]): The model.
    """
    where = "spacy-spanbert.QuestionAnswerer.v1 (components.spanbert_qa.model)"
    check_positive(where, "hidden_width", hidden_width)
    check_dropout(where, dropout)
    if isinstance(head_lr_scale, bool) or not isinstance(head_lr_scale, (int, float)) or head_lr_scale <= 0:
        raise ValueError(Errors.E043.format(where=where, value=head_lr_scale))
    return qa_model(
        name, do_lower_case=do_lower_case, hidden_width=hidden_width, dropout=dropout, head_lr_scale=head_lr_scale
    )


@registry.architectures("spacy-spanbert.RelationClassifier.v1")
def build_relation_classifier(
    tok2vec: Optional[Model] = None,
    hidden_width: int = 128,
    feature_width: int = 32,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[Tuple[List[Doc], List[Ints2d]], Tuple[Ints1d, Floats2d]]:
    """Score entity pairs per relation label (`spanbert_rel`): the pair
    representation of layers/span_pairs.py (head, tail, their product,
    distance and width embeddings) plus a context vector (each pair's
    attention over the candidate spans between its arguments), then an MLP
    to one logit per label (independent sigmoids).

    tok2vec (Optional[Model[List[Doc], SpanBatch]]): Candidate spans and their
        vectors; None (default) for a `SpanBertListener` of any `spanbert`.
    hidden_width (int): Width of the hidden layer of the output MLP.
    feature_width (int): Width of the distance and width embeddings.
    dropout (float): Dropout rate, in [0, 1).
    nO (Optional[int]): Number of relation labels; None to set it at initialize.
    RETURNS (Model[Tuple[List[Doc], List[Ints2d]], Tuple[Ints1d, Floats2d]]):
        Docs and per-doc pair offsets in; the positions of the pairs whose
        arguments are candidate spans, and their logits, out.
    """
    where = "spacy-spanbert.RelationClassifier.v1"
    check_positive(where, "hidden_width", hidden_width)
    check_positive(where, "feature_width", feature_width)
    check_dropout(where, dropout)
    if tok2vec is None:
        tok2vec = SpanBertListener(upstream_name="*")
    return relation_classifier(tok2vec, hidden_width=hidden_width, feature_width=feature_width, dropout=dropout, nO=nO)


@registry.architectures("spacy-spanbert.CorefScorer.v1")
def build_coref_scorer(
    tok2vec: Optional[Model] = None,
    hidden_width: int = 150,
    feature_width: int = 20,
    dropout: float = 0.3,
    mention_ratio: float = 0.4,
    max_antecedents: int = 50,
    antecedent_window: int = 400,
) -> Model[List[Doc], CorefScores]:
    """Coreference by span ranking (Lee et al. 2017, 2018) over the candidate
    spans of the span encoder: mention scores, pruning to the top
    `mention_ratio * n_tokens` mentions, a coarse bilinear score over the
    previous `antecedent_window` kept mentions to pick `max_antecedents`, and
    a fine FFNN score over the pair representation for those. Time and
    memory are linear in doc length (layers/coref_module.py).

    tok2vec (Optional[Model[List[Doc], SpanBatch]]): Candidate spans and their
        vectors; None (default) for a `SpanBertListener` of any `spanbert`.
    hidden_width (int): Width of the hidden layers of the mention and pair FFNNs.
    feature_width (int): Width of the distance and width embeddings.
    dropout (float): Dropout rate, in [0, 1).
    mention_ratio (float): Mentions kept per token, in (0, 1].
    max_antecedents (int): Antecedents scored in full per mention (K).
    antecedent_window (int): Previous kept mentions ranked by the coarse score.
    RETURNS (Model[List[Doc], CorefScores]): The scorer.
    """
    where = "spacy-spanbert.CorefScorer.v1"
    for name, value in (("hidden_width", hidden_width), ("feature_width", feature_width)):
        check_positive(where, name, value)
    check_positive(where, "max_antecedents", max_antecedents)
    check_positive(where, "antecedent_window", antecedent_window)
    check_dropout(where, dropout)
    if isinstance(mention_ratio, bool) or not isinstance(mention_ratio, (int, float)) or not 0 < mention_ratio <= 1:
        raise ValueError(Errors.E600.format(where=where, value=mention_ratio))
    if tok2vec is None:
        tok2vec = SpanBertListener(upstream_name="*")
    return coref_scorer(
        tok2vec,
        hidden_width=hidden_width,
        feature_width=feature_width,
        dropout=dropout,
        mention_ratio=float(mention_ratio),
        max_antecedents=max_antecedents,
        antecedent_window=antecedent_window,
    )
