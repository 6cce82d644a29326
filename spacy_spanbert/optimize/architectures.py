"""Registered builders of optimized (inference-only) models: composition only.

`spacy-spanbert.OptimizedTransformerModel.v1` is spacy-transformers' own
`TransformerModel` (tokenization, span getting, alignment and the
`FullTransformerBatch` output are unchanged) with an `OptimizedHFShim` in
place of its `HFShim`: the Hugging Face encoder runs as a torch int8 module
or an ONNX Runtime session.
"""

from typing import Callable, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects
from spacy_transformers.layers.transformer_model import TransformerModel
from thinc.api import Model

from .runtimes import check_settings
from .shim import ARCHITECTURE, OptimizedHFShim


@registry.architectures(ARCHITECTURE)
def build_optimized_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    runtime: str = "torch",
    quantize: str = "int8",
) -> Model[List[Doc], FullTransformerBatch]:
    """spacy-transformers' `TransformerModel.v3` for inference on a CPU. The
    settings up to `grad_scaler_config` are those of `TransformerModel.v3`.

    runtime (str): "torch" (the Hugging Face module) or "onnx" (an ONNX
        Runtime session; needs `pip install spacy-spanbert[onnx]`).
    quantize (str): "int8" (dynamic int8 weights of the linear layers) or "none".
    RETURNS (Model[List[Doc], FullTransformerBatch]): The transformer model;
        its `update` raises, as it is inference only.
    """
    check_settings(ARCHITECTURE, runtime, quantize)
    model = TransformerModel(
        name,
        get_spans,
        dict(tokenizer_config or {}),
        dict(transformer_config or {}),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )
    wrapper = model.layers[0]
    wrapper.shims[0] = OptimizedHFShim(
        wrapper.shims[0]._hfmodel,
        runtime=runtime,
        quantize=quantize,
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )
    model.attrs["set_transformer"] = set_optimized_transformer
    return model


def set_optimized_transformer(model: Model, hf_model: HFObjects) -> None:
    """`TransformerModel`'s `set_transformer` hook: build the runtime from a
    loaded fp32 encoder (at `initialize`, or by `spacy spanbert optimize`)."""
    model.layers[0].shims[0].optimize(hf_model)
    model.attrs["has_transformer"] = True
    model.set_dim("nO", hf_model.transformer.config.hidden_size)
