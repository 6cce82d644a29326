"""The two inference runtimes of an optimized transformer, built from the
same saved state: the Hugging Face module itself (optionally with torch's
dynamic int8 quantization of its `Linear` layers), or an ONNX Runtime
session over the module exported to ONNX (optionally with ONNX Runtime's
dynamic int8 quantization of its weight `MatMul`s)."""

import io
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from spacy.util import make_tempdir
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling

from ..errors import Errors

RUNTIMES = ("torch", "onnx")
QUANTIZE = ("int8", "none")
# The ONNX opset of the export; 14 is the first with the ops a BERT needs
# without fallbacks, 17 the first with a fused LayerNormalization.
OPSET = 17
ONNX_OUTPUTS = ("last_hidden_state", "pooler_output")

State = Dict[str, torch.Tensor]


def check_settings(where: str, runtime: Any, quantize: Any) -> None:
    """Raise a ValueError naming `where` unless `runtime` and `quantize` are
    known values and the runtime's packages are installed."""
    if runtime not in RUNTIMES:
        raise ValueError(Errors.E700.format(where=where, choices=", ".join(RUNTIMES), value=runtime))
    if quantize not in QUANTIZE:
        raise ValueError(Errors.E701.format(where=where, choices=", ".join(QUANTIZE), value=quantize))
    if runtime == "onnx" and not onnx_available():
        raise ValueError(Errors.E702.format(where=where))


def onnx_available() -> bool:
    """RETURNS (bool): Whether onnxruntime and onnx can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def torch_runtime(module: PreTrainedModel, state: State, *, quantize: str, what: str) -> torch.nn.Module:
    """Load fp32 `state` into `module` (built from its config) and, for
    int8, replace its `Linear` layers by torch's dynamically quantized ones
    (int8 weights with a scale per output channel, activations quantized per
    batch: one scale for a whole weight matrix loses the small rows).
    Quantizing a given fp32 state is deterministic, so the weights are saved
    in fp32 and quantized at load.

    module (PreTrainedModel): The Hugging Face encoder, built from its config.
    state (Dict[str, torch.Tensor]): Its fp32 weights.
    quantize (str): "int8" or "none".
    what (str): Names the weights in error messages.
    RETURNS (torch.nn.Module): The runtime module, in eval mode.
    """
    from ..serialize import load_state

    load_state(module, state, what=what)
    module.eval()
    if quantize == "int8":
        with warnings.catch_warnings():
            # torch announces the move of eager-mode quantization to torchao
            # at every call; the message is for this package, not its users.
            warnings.filterwarnings(
                "ignore", message=".*torch.ao.quantization is deprecated", category=DeprecationWarning
            )
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions", category=UserWarning)
            qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
            module = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    return module


def input_names(tokenizer: Any) -> List[str]:
    """The encoder inputs spacy-transformers passes for this tokenizer: it
    sends token_type_ids whenever the tokenizer returns them."""
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []):
        names.append("token_type_ids")
    return names


class _ExportWrapper(torch.nn.Module):
    """The encoder with positional inputs and tuple outputs, for the exporter."""

    def __init__(self, model: PreTrainedModel, names: List[str], outputs: Tuple[str, ...]):
        super().__init__()
        self.model = model
        self.names = names
        self.outputs = outputs

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        output = self.model(**dict(zip(self.names, inputs)), return_dict=True)
        return tuple(output[name] for name in self.outputs)


def export_onnx(model: PreTrainedModel, tokenizer: Any, *, quantize: str) -> bytes:
    """Export a Hugging Face encoder to ONNX with dynamic batch and sequence
    axes (the TorchScript exporter: the dynamo one needs onnxscript), and for
    int8 quantize the weights of its `MatMul`s with ONNX Runtime's dynamic
    quantization (activations stay float and are quantized per batch).

    model (PreTrainedModel): The fp32 encoder.
    tokenizer (Any): Its tokenizer, for the input names and a sample batch.
    quantize (str): "int8" or "none".
    RETURNS (bytes): The ONNX model.
    """
    names = input_names(tokenizer)
    outputs = ONNX_OUTPUTS if getattr(model, "pooler", None) is not None else ONNX_OUTPUTS[:1]
    sample = tokenizer(["hello world", "a b c d e"], padding="longest", return_tensors="pt")
    args = tuple(sample[name] for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, "last_hidden_state")}
    axes["pooler_output"] = {0: "batch"}
    # eval() on the wrapper too: the exporter restores the wrapper's mode
    # recursively afterwards, which would leave the encoder in train mode.
    wrapper = _ExportWrapper(model, names, outputs).eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's notes on constants (the mask's 1.0) and the exporter's
        # notice that it is the legacy one are not for users.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            args,
            buffer,
            dynamo=False,
            input_names=names,
            output_names=list(outputs),
            dynamic_axes={name: axes[name] for name in (*names, *outputs)},
            opset_version=OPSET,
        )
    model.eval()
    data = buffer.getvalue()
    return _quantize_onnx(data) if quantize == "int8" else data


def _quantize_onnx(data: bytes) -> bytes:
    """ONNX Runtime's dynamic int8 quantization of the weight `MatMul`s
    (the `Linear` layers of the encoder): int8 weights with a scale per
    output channel (one scale per matrix loses the small rows), activations
    quantized per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with make_tempdir() as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(data)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            extra_options={"MatMulConstBOnly": True},
        )
        return target.read_bytes()


class OnnxEncoder(torch.nn.Module):
    """A stand-in for the Hugging Face encoder inside spacy-transformers'
    shim: the same call (input_ids, attention_mask, token_type_ids as
    tensors) and output type, computed by an ONNX Runtime session. The
    session is created on first use in each process, so that spaCy's
    `n_process` workers (forked, see `_fork.py`) each make their own."""

    def __init__(self, onnx_bytes: bytes, config: PretrainedConfig):
        super().__init__()
        self.onnx_bytes = onnx_bytes
        self.config = config
        self._session: Optional[Any] = None
        self._pid: Optional[int] = None
        # Sessions inherited through fork (spaCy's n_process workers): never
        # destroyed in the child, whose copy of the parent's thread pool has
        # no threads to join (destroying it hangs); the worker ends with
        # os._exit, so nothing frees them.
        self._inherited: List[Any] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def session(self) -> Any:
        """The ONNX Runtime session of this process, with one intra-op and
        one inter-op thread: the optimized transformer runs its length groups
        on as many threads as torch uses here (`LengthBuckets`), which keeps
        both cores busier than splitting every operation of one call."""
        if self._session is None or self._pid != os.getpid():
            import onnxruntime

            if self._session is not None:
                self._inherited.append(self._session)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(self.onnx_bytes, options, providers=["CPUExecutionProvider"])
            self._pid = os.getpid()
        return self._session

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: Optional[torch.Tensor] = None,
    ) -> BaseModelOutput:
        session = self.session()
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {}
        for node in session.get_inputs():
            value = given[node.name]
            if value is None:
                value = torch.zeros_like(input_ids)
            feeds[node.name] = value.to(torch.int64).cpu().numpy()
        names = [node.name for node in session.get_outputs()]
        outputs = {name: torch.from_numpy(array) for name, array in zip(names, session.run(names, feeds))}
        if "pooler_output" in outputs:
            return BaseModelOutputWithPooling(**outputs)
        return BaseModelOutput(**outputs)

    def __getstate__(self) -> Dict[str, Any]:
        # A session cannot be copied or pickled; the copy makes its own.
        state = self.__dict__.copy()
        state["_session"] = None
        state["_pid"] = None
        state["_inherited"] = []
        return state
