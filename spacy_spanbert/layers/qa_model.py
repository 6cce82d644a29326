"""The question-answering model: a Hugging Face encoder over
`[CLS] question [SEP] context [SEP]` windows, the span representation on its
token states, a linear span score and a no-answer score from `[CLS]`.

The PyTorch module (`QAModule`) holds the encoder, its tokenizer and the
heads; `qa_model` wraps it for thinc (thinc's PyTorch wrapper with `QAShim`), so
the spaCy optimizer updates every parameter in the shim's `finish_update`.
Serialization goes through the shim's `serialize_model` / `deserialize_model`
hooks: the bytes hold the encoder's config, the tokenizer's files and all
weights, so a saved pipeline loads without the original encoder folder.
"""

import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy
import srsly
import torch
from thinc.api import ArgsKwargs, Model, PyTorchShim, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from thinc.types import Floats1d
from torch import nn

from .span_representation import SpanRepresentation

# The bytes written by `serialize_qa_module`; increase on a layout change.
FORMAT = 1


@dataclass
class QABatch:
    """Encoder inputs for a batch of windows and the candidate answer spans.

    encoder_inputs (Dict[str, numpy.ndarray]): `input_ids`, `attention_mask`
        (and `token_type_ids` where the encoder uses them), [n_windows, length].
    starts, ends (numpy.ndarray): int64 [n_spans], positions in the windows
        flattened to one row of n_windows * length pieces; ends exclusive.
    """

    encoder_inputs: Dict[str, numpy.ndarray]
    starts: numpy.ndarray
    ends: numpy.ndarray


InT = QABatch
# (span scores [n_spans], no-answer scores [n_windows])
OutT = Tuple[Floats1d, Floats1d]


class _Uninitialized(nn.Module):
    """Stands in for `QAModule` until `initialize` loads the encoder."""

    def forward(self, *args, **kwargs):
        raise ValueError("The spanbert_qa model is not initialized: call nlp.initialize() first.")


class QAModule(nn.Module):
    """Encoder + span scorer + no-answer scorer.

    encoder (nn.Module): A Hugging Face encoder (`AutoModel`).
    tokenizer (Any): Its fast tokenizer (kept here so that it is saved with
        the weights; it is not a submodule).
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout on the token states and span vectors.
    """

    def __init__(self, encoder: nn.Module, tokenizer: Any, hidden_width: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.hidden_width = hidden_width
        n_in = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.span_rep = SpanRepresentation(n_in, hidden_width, dropout=0.0)
        self.span_score = nn.Linear(hidden_width, 1)
        self.null_score = nn.Linear(n_in, 1)

    def forward(
        self, inputs: Dict[str, torch.Tensor], starts: torch.Tensor, ends: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        H = self.encoder(**inputs).last_hidden_state
        flat = self.dropout(H.reshape(-1, H.shape[-1]))
        spans = self.span_rep(flat, starts, ends)
        span_scores = self.span_score(self.dropout(nn.functional.gelu(spans))).squeeze(-1)
        null_scores = self.null_score(self.dropout(H[:, 0])).squeeze(-1)
        return span_scores, null_scores


def _encoder_kwargs(config: Any) -> Dict[str, Any]:
    """No pooler: the component reads token states only."""
    return {"add_pooling_layer": False} if config.model_type in _POOLED else {}


_POOLED = ("bert", "roberta", "xlm-roberta", "electra", "camembert")


def load_qa_module(name: str, hidden_width: int, dropout: float, do_lower_case: Optional[bool] = None) -> QAModule:
    """Load a pretrained encoder and its tokenizer into a new `QAModule`.

    name (str): A Hugging Face model name or folder.
    do_lower_case (Optional[bool]): The tokenizer's casing; None for its config's.
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout rate.
    RETURNS (QAModule): The module, heads freshly initialised.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    kwargs = {} if do_lower_case is None else {"do_lower_case": do_lower_case}
    tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True, **kwargs)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"spanbert_qa: the tokenizer of {name!r} is not a fast tokenizer, and the "
            f"component needs its character offsets. Use a model folder with a "
            f"tokenizer.json, or one that transformers converts to a fast tokenizer."
        )
    config = AutoConfig.from_pretrained(name)
    encoder = AutoModel.from_pretrained(name, **_encoder_kwargs(config))
    return QAModule(encoder, tokenizer, hidden_width, dropout)


def serialize_qa_module(module: nn.Module) -> bytes:
    """The module as bytes: encoder config, tokenizer files and weights."""
    if not isinstance(module, QAModule):
        return srsly.msgpack_dumps({"format": FORMAT, "initialized": False})
    with tempfile.TemporaryDirectory() as tmp:
        module.tokenizer.save_pretrained(tmp)
        module.encoder.config.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    state = BytesIO()
    torch.save({k: v.cpu() for k, v in module.state_dict().items()}, state)
    msg = {
        "format": FORMAT,
        "initialized": True,
        "hidden_width": module.hidden_width,
        "dropout": module.dropout.p,
        "files": files,
        "state": state.getvalue(),
    }
    return srsly.msgpack_dumps(msg)


def deserialize_qa_module(module: nn.Module, data: bytes, device: "torch.device") -> nn.Module:
    """Rebuild a `QAModule` from `serialize_qa_module` bytes, without the
    original encoder folder."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    msg = srsly.msgpack_loads(data)
    if not msg.get("initialized"):
        return module
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in msg["files"].items():
            Path(tmp, name).write_bytes(content)
        config = AutoConfig.from_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True)
    encoder = AutoModel.from_config(config, **_encoder_kwargs(config))
    new = QAModule(encoder, tokenizer, msg["hidden_width"], msg["dropout"])
    new.load_state_dict(torch.load(BytesIO(msg["state"]), map_location="cpu"))
    return new.to(device)


def _convert_inputs(model: Model, batch: QABatch, is_train: bool):
    device = model.shims[0].device
    inputs = {k: torch.from_numpy(numpy.ascontiguousarray(v)).to(device) for k, v in batch.encoder_inputs.items()}
    starts = torch.from_numpy(batch.starts).to(device)
    ends = torch.from_numpy(batch.ends).to(device)
    return ArgsKwargs(args=(inputs, starts, ends), kwargs={}), lambda d_inputs: batch


def _convert_outputs(model: Model, inputs_outputs, is_train: bool):
    _, (span_scores, null_scores) = inputs_outputs
    # numpy on every device: the scores are small, and the component's
    # loss and decoding work on the CPU
    Y = (span_scores.detach().float().cpu().numpy(), null_scores.detach().float().cpu().numpy())

    def backprop(dY: OutT) -> ArgsKwargs:
        device = span_scores.device
        grads = (xp2torch(dY[0], device=device), xp2torch(dY[1], device=device))
        return ArgsKwargs(args=((span_scores, null_scores),), kwargs={"grad_tensors": grads})

    return Y, backprop


class QAShim(PyTorchShim):
    """A `PyTorchShim` whose `finish_update` trains the freshly initialised
    heads (every parameter outside the encoder) at `head_lr_scale` times the
    optimizer's learning rate, through thinc's `lr_scale`."""

    head_lr_scale: float = 1.0

    def finish_update(self, optimizer: Any) -> None:
        for name, torch_data in self._model.named_parameters():
            if torch_data.grad is None:
                continue
            if not self._grad_scaler.found_inf:
                scale = 1.0 if name.startswith("encoder.") else self.head_lr_scale
                param, grad = optimizer(
                    (self.id, name),
                    torch2xp(torch_data.data),
                    torch2xp(torch_data.grad),
                    lr_scale=scale,
                )
                torch_data.data = xp2torch(param, requires_grad=True, device=torch_data.device)
            torch_data.grad.zero_()
        self._grad_scaler.update()


def qa_model(
    name: str, *, do_lower_case: Optional[bool], hidden_width: int, dropout: float, head_lr_scale: float
) -> Model[InT, OutT]:
    """The QA model: `QABatch` -> (span scores, no-answer scores). The encoder
    is loaded from `name` in `initialize`.

    name (str): A Hugging Face model name or folder.
    do_lower_case (Optional[bool]): The tokenizer's casing; None for its config's.
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout rate.
    head_lr_scale (float): Learning-rate multiplier of the heads.
    RETURNS (Model[QABatch, Tuple[Floats1d, Floats1d]]): The model.
    """
    shim = QAShim(
        _Uninitialized(),
        serialize_model=serialize_qa_module,
        deserialize_model=deserialize_qa_module,
    )
    shim.head_lr_scale = head_lr_scale
    wrapper = Model(
        "pytorch",
        pytorch_forward,
        attrs={"convert_inputs": _convert_inputs, "convert_outputs": _convert_outputs},
        shims=[shim],
    )
    return Model(
        "spanbert_qa",
        forward,
        init=init,
        layers=[wrapper],
        attrs={"name": name, "do_lower_case": do_lower_case, "hidden_width": hidden_width, "dropout": dropout},
    )


def forward(model: Model[InT, OutT], batch: InT, is_train: bool):
    return model.layers[0](batch, is_train)


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    shim = model.layers[0].shims[0]
    if not isinstance(shim._model, QAModule):
        device = shim.device
        shim._model = load_qa_module(
            model.attrs["name"], model.attrs["hidden_width"], model.attrs["dropout"], model.attrs["do_lower_case"]
        ).to(device)


def get_module(model: Model) -> Optional[QAModule]:
    """RETURNS (Optional[QAModule]): The module, None before initialization."""
    module = model.layers[0].shims[0]._model
    return module if isinstance(module, QAModule) else None
