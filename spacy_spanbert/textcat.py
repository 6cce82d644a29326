"""Span-attention text classification: a model for spaCy's own `textcat` and
`textcat_multilabel` components that reads the `spanbert` span vectors."""
from typing import List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Logistic, Model, chain, softmax_activation
from thinc.types import Floats2d, Ragged

from .layers.label_attention import attention_weights, grow_labels, label_attention
from .layers.listener import SpanBertListener

WHERE = "spacy-spanbert.SpanAttentionTextCat.v1"


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
    tok2vec (Optional[Model]): The span vectors, usually
        `spacy-spanbert.SpanBertListener.v1`; None (default) listens to any
        `spanbert` component.
    nO (Optional[int]): Number of labels; None to infer it from the data.
    dropout (float): Dropout rate on the span and doc vectors, in [0, 1).
    RETURNS (Model[List[Doc], Floats2d]): One row of label scores per doc.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{WHERE}: dropout must be in [0, 1), got {dropout!r}.")
    if tok2vec is None:
        tok2vec = SpanBertListener(upstream_name="*")
    attention = label_attention(nO=nO, dropout=dropout)
    activation = softmax_activation() if exclusive_classes else Logistic()
    model = chain(tok2vec, attention, activation)
    model.init = _init_textcat  # type: ignore[assignment]
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("label_attention", attention)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = resize_output
    return model


def _init_textcat(model: Model, X=None, Y=None) -> None:
    # spaCy initializes textcat with `reference` docs, which the span encoder
    # has not annotated: the width comes from the listener, not from X.
    tok2vec = model.get_ref("tok2vec")
    attention = model.get_ref("label_attention")
    if attention.has_dim("nI") is None:
        if tok2vec.has_dim("nO") is not True:
            raise ValueError(
                f"{WHERE}: the width of the span vectors is unknown. Add the "
                f"'spanbert' component before the text classifier and initialize "
                f"the whole pipeline with nlp.initialize(), or set 'width' on the "
                f"SpanBertListener."
            )
        attention.set_dim("nI", tok2vec.get_dim("nO"))
    if Y is not None and attention.has_dim("nO") is None:
        attention.set_dim("nO", Y.shape[1])
    if attention.has_dim("nO") is None:
        raise ValueError(
            f"{WHERE}: the number of labels is unknown. Add labels to the text "
            f"classifier, or pass examples with cats to nlp.initialize()."
        )
    attention.initialize()
    if model.has_dim("nO") is None:
        model.set_dim("nO", attention.get_dim("nO"))
    if model.has_dim("nI") is None and tok2vec.has_dim("nI") is True:
        model.set_dim("nI", tok2vec.get_dim("nI"))


def resize_output(model: Model, new_nO: int) -> Model:
    """Make room for labels added after the model was built; called by the
    text classifiers' `add_label`.

    model (Model): A `SpanAttentionTextCat` model.
    new_nO (int): The new number of labels.
    RETURNS (Model): The model, changed in place.
    """
    attention = model.get_ref("label_attention")
    if attention.has_dim("nO") is None:
        return model
    if attention.get_dim("nO") == new_nO:
        return model
    if attention.get_dim("nO") > new_nO:
        raise ValueError(
            f"{WHERE}: cannot shrink the model from {attention.get_dim('nO')} to "
            f"{new_nO} labels. Build a new model instead."
        )
    if not attention.has_param("Q"):
        attention.set_dim("nO", new_nO, force=True)
        model.set_dim("nO", new_nO, force=True)
        return model
    grown = grow_labels(attention, new_nO)
    model.replace_node(attention, grown)
    model.set_ref("label_attention", grown)
    model.set_dim("nO", new_nO, force=True)
    return model


def span_attention_evidence(model: Model, docs: List[Doc]) -> Tuple[Ragged, Floats2d]:
    """The attention each label pays to each candidate span, as evidence for
    the scores. The `spanbert` component must have annotated `docs`.

    model (Model): A `SpanAttentionTextCat` model, e.g. `nlp.get_pipe("textcat").model`.
    docs (List[Doc]): The docs.
    RETURNS (Tuple[Ragged, Floats2d]): The `[start, end)` rows of the spans,
        with one length per doc, and one row of label weights per span (each
        label's weights sum to 1 over the spans of a doc).
    """
    batch = model.get_ref("tok2vec").predict(docs)
    weights = attention_weights(model.get_ref("label_attention"), batch)
    return batch.indices, weights
