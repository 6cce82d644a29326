"""One serializer for torch state: safetensors bytes with a SHA-256, in a
msgpack envelope next to a small config, so that loading a pipeline or a
checkpoint never unpickles anything. Used by the shims of the package's torch
modules (layers/torch_shim.py), the QA encoder, the optimized transformer and
the pretraining checkpoints."""

import hashlib
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import srsly
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .errors import Errors

State = Dict[str, torch.Tensor]


def state_to_bytes(state: Optional[State], config: Optional[Dict[str, Any]]) -> bytes:
    """Serialize torch tensors and the config needed to rebuild their module.

    state (Optional[Dict[str, torch.Tensor]]): The tensors (e.g. a module's
        `state_dict()`); None for a module that was never built.
    config (Optional[Dict[str, Any]]): msgpack-safe settings stored with them.
    RETURNS (bytes): The msgpack envelope.
    """
    if state is None:
        return srsly.msgpack_dumps({"config": config, "state": b"", "sha256": None})
    payload = save_safetensors({k: v.detach().contiguous().cpu() for k, v in state.items()})
    return srsly.msgpack_dumps({"config": config, "state": payload, "sha256": hashlib.sha256(payload).hexdigest()})


def state_from_bytes(data: bytes, *, what: str) -> Tuple[Optional[Dict[str, Any]], Optional[State]]:
    """Read what `state_to_bytes` wrote, checking its format and checksum.

    data (bytes): The envelope.
    what (str): Names the owner in error messages (e.g. "spanbert: the saved
        span-encoder weights").
    RETURNS (Tuple[Optional[Dict[str, Any]], Optional[Dict[str, torch.Tensor]]]):
        The config and the tensors (None if no state was saved).
    """
    try:
        msg = srsly.msgpack_loads(data)
    except Exception:  # msgpack raises several error types on foreign bytes
        msg = None
    if not isinstance(msg, dict) or "config" not in msg or not isinstance(msg.get("state"), bytes):
        raise ValueError(Errors.E050.format(what=what))
    if msg.get("sha256") is None and not msg["state"]:
        return msg["config"], None
    if hashlib.sha256(msg["state"]).hexdigest() != msg.get("sha256"):
        raise ValueError(Errors.E051.format(what=what))
    try:
        state = load_safetensors(msg["state"])
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(Errors.E052.format(what=what, err=err)) from None
    return msg["config"], state


def load_state(module: torch.nn.Module, state: State, *, what: str) -> None:
    """`module.load_state_dict(state)` with an error that names `what`."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(Errors.E053.format(what=what, err=err)) from None


def write_state(path: Union[str, Path], state: Optional[State], config: Optional[Dict[str, Any]]) -> None:
    """`state_to_bytes` to a file, written to a temporary name and renamed so
    that an interrupted write never leaves a half file under `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(state_to_bytes(state, config))
    tmp.replace(path)


def read_state(path: Union[str, Path], *, what: str) -> Tuple[Optional[Dict[str, Any]], Optional[State]]:
    """`state_from_bytes` of a file."""
    return state_from_bytes(Path(path).read_bytes(), what=what)
