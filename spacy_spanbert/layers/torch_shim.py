"""The thinc shims of the package's own PyTorch modules: a module made at
initialize (None before), and saved through serialize.py (safetensors plus
the config that rebuilds it), so that loading never unpickles anything."""

from typing import Any, ClassVar, Dict, FrozenSet, Optional, Type

from thinc.api import PyTorchShim
from thinc.util import get_torch_default_device
from torch import nn

from ..errors import Errors
from ..serialize import load_state, state_from_bytes, state_to_bytes


class LazyTorchShim(PyTorchShim):
    """A PyTorchShim whose module is made at initialize (None before): moving
    or updating it before then does nothing."""

    @property
    def is_built(self) -> bool:
        return self._model is not None

    def to_device(self, device_type: str, device_id: int) -> None:
        if self._model is not None:
            super().to_device(device_type, device_id)

    def finish_update(self, optimizer: Any) -> None:
        if self._model is not None:
            super().finish_update(optimizer)


class ConfiguredTorchShim(LazyTorchShim):
    """A `LazyTorchShim` whose module is `module_cls(**cfg)`, built once the
    widths are known and saved as its state and `cfg` (`state_to_bytes`).

    A subclass sets `module_cls`, `what` (names the weights in error messages)
    and, to check the saved config's keys too, `config_keys`.
    """

    module_cls: ClassVar[Type[nn.Module]]
    what: ClassVar[str]
    config_keys: ClassVar[Optional[FrozenSet[str]]] = None

    def build(self, cfg: Dict[str, Any]) -> None:
        """Make a fresh module.

        cfg (Dict[str, Any]): `module_cls`' arguments.
        """
        self.cfg = dict(cfg)
        self._model = self.module_cls(**self.cfg).to(get_torch_default_device())

    def ensure_built(self, cfg: Dict[str, Any]) -> None:
        """Build the module unless one of this config is there already (a
        loaded or trained model keeps its weights through `initialize`).

        cfg (Dict[str, Any]): `module_cls`' arguments.
        """
        if not self.is_built or self.cfg != cfg:
            self.build(cfg)

    def to_bytes(self) -> bytes:
        if self._model is None:
            return state_to_bytes(None, None)
        return state_to_bytes(self._model.state_dict(), self.cfg)

    def from_bytes(self, bytes_data: bytes) -> "ConfiguredTorchShim":
        config, state = state_from_bytes(bytes_data, what=self.what)
        if config is None:
            self._model = None
            return self
        wrong_keys = isinstance(config, dict) and self.config_keys is not None and set(config) != self.config_keys
        if not isinstance(config, dict) or state is None or wrong_keys:
            raise ValueError(Errors.E050.format(what=self.what))
        self.build(config)
        load_state(self._model, state, what=self.what)
        return self
