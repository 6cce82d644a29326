"""Checkpoints of `spacy spanbert pretrain`, written and read without pickle.

A checkpoint is one file, OUTPUT_DIR/checkpoint/state.msgpack, written with
the package's one serializer for torch state (`serialize.write_state`:
safetensors with a SHA-256 in a msgpack envelope, written to a temporary name
and renamed, so an interruption leaves the previous checkpoint whole).

- Its tensors: the pretrainer's weights ("model.<name>"; a weight tied to
  another, such as the MLM decoder to the input embeddings, is stored once),
  the optimizer's per-parameter state ("optimizer.<index>.<field>") and the
  random number generators' states ("rng.torch", "rng.cuda").
- Its config (msgpack): the run's settings, the progress counters, the
  optimizer's param_groups, the scheduler's state_dict and the tied names.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from ...errors import Errors
from ...serialize import State, load_state, read_state, write_state

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.msgpack"
CONFIG_KEYS = ("settings", "progress", "tied", "optimizer", "scheduler")
# the settings a checkpoint must share with the command that resumes it
RESUME_KEYS = (
    "model",
    "texts",
    "max_steps",
    "seq_len",
    "batch_size",
    "lr",
    "warmup_steps",
    "head_steps",
    "sbo_weight",
    "masking",
    "seed",
    "heldout_share",
)


@dataclass
class Progress:
    """The counters of a run, saved with each checkpoint."""

    step: int = 0
    tokens_seen: int = 0
    seconds: float = 0.0
    heldout_loss_before: float = 0.0


def checkpoint_path(output_dir: Path) -> Path:
    """RETURNS (Path): The checkpoint file of a run writing to `output_dir`."""
    return Path(output_dir) / CHECKPOINT_DIR / CHECKPOINT_FILE


def write_checkpoint(
    path: Path,
    *,
    settings: Dict[str, Any],
    progress: Progress,
    learner: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """Write the state of a run, so that resuming it gives the result of an
    uninterrupted run.

    path (Path): The checkpoint file.
    settings (Dict[str, Any]): The run's settings (checked on resume).
    progress (Progress): The counters.
    learner (torch.nn.Module): The pretrainer.
    optimizer (torch.optim.Optimizer): Its optimizer.
    scheduler (torch.optim.lr_scheduler.LRScheduler): Its learning-rate schedule.
    """
    model_state, tied = _untie(learner.state_dict())
    tensors = {f"model.{key}": value for key, value in model_state.items()}
    optimizer_state = optimizer.state_dict()
    scalars: Dict[str, Dict[str, Any]] = {}
    for index, fields in optimizer_state["state"].items():
        for field, value in fields.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{field}"] = value
            else:
                scalars.setdefault(str(index), {})[field] = value
    tensors["rng.torch"] = torch.get_rng_state()
    device = next(learner.parameters()).device
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    config = {
        "settings": settings,
        "progress": asdict(progress),
        "tied": tied,
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "scheduler": scheduler.state_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_state(path, tensors, config)


def read_checkpoint(path: Path, settings: Dict[str, Any]) -> Tuple[Dict[str, Any], State]:
    """Read a checkpoint and check that it belongs to a run of `settings`.

    path (Path): The checkpoint file.
    settings (Dict[str, Any]): The settings of the run that resumes it.
    RETURNS (Tuple[Dict[str, Any], Dict[str, torch.Tensor]]): Its config and tensors.
    """
    folder = path.parent
    try:
        config, tensors = read_state(path, what="its weights and optimizer state")
    except ValueError as err:
        raise ValueError(Errors.E319.format(path=path, reason=err, folder=folder)) from None
    if not isinstance(config, dict) or any(key not in config for key in CONFIG_KEYS) or tensors is None:
        reason = "it is not a checkpoint of spacy spanbert pretrain."
        raise ValueError(Errors.E319.format(path=path, reason=reason, folder=folder))
    saved = config["settings"]
    differ = [
        f"{key}: {saved.get(key)!r} there, {settings[key]!r} now"
        for key in RESUME_KEYS
        if saved.get(key) != settings[key]
    ]
    if differ:
        raise ValueError(Errors.E318.format(path=path, differ="; ".join(differ), folder=folder))
    return config, tensors


def restore_checkpoint(
    path: Path,
    config: Dict[str, Any],
    tensors: State,
    *,
    learner: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> Progress:
    """Load what `read_checkpoint` read into a freshly built run.

    path (Path): The checkpoint file, for error messages.
    config (Dict[str, Any]): Its config.
    tensors (Dict[str, torch.Tensor]): Its tensors.
    learner (torch.nn.Module): The pretrainer.
    optimizer (torch.optim.Optimizer): Its optimizer.
    scheduler (torch.optim.lr_scheduler.LRScheduler): Its learning-rate schedule.
    RETURNS (Progress): The counters of the run when it was saved.
    """
    model_state = {key[len("model.") :]: value for key, value in tensors.items() if key.startswith("model.")}
    for key, original in config["tied"].items():
        model_state[key] = model_state[original]
    load_state(learner, model_state, what=f"spanbert pretrain: the weights in {path}")
    optimizer.load_state_dict(_optimizer_state(config["optimizer"], tensors, optimizer))
    scheduler.load_state_dict(config["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], next(learner.parameters()).device)
    return Progress(**config["progress"])


def _untie(state: State) -> Tuple[State, Dict[str, str]]:
    """The tensors of a state_dict with each tied weight kept once (safetensors
    refuses tensors that share memory), and the names of the dropped ones
    mapped to the names they are tied to."""
    kept: State = {}
    tied: Dict[str, str] = {}
    first: Dict[Tuple[Any, ...], str] = {}
    for key, value in state.items():
        identity = (value.data_ptr(), value.dtype, tuple(value.shape), value.stride())
        if value.numel() and identity in first:
            tied[key] = first[identity]
        else:
            first.setdefault(identity, key)
            kept[key] = value
    return kept, tied


def _optimizer_state(saved: Dict[str, Any], tensors: State, optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """The optimizer's state_dict from a checkpoint's parts. msgpack turns
    tuples (Adam's betas) into lists: they become tuples again where the
    freshly built optimizer has one."""
    state: Dict[int, Dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, field = key.split(".", 2)
            state.setdefault(int(index), {})[field] = value
    for index, fields in saved["scalars"].items():
        state.setdefault(int(index), {}).update(fields)
    groups = [
        {key: tuple(value) if isinstance(current.get(key), tuple) else value for key, value in group.items()}
        for group, current in zip(saved["param_groups"], optimizer.param_groups)
    ]
    return {"state": state, "param_groups": groups}
