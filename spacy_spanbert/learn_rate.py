"""`learn_rate_scale`: train a component's own weights at a multiple of the
optimizer's learning rate (the transformer keeps the optimizer's rate)."""

from typing import Any

from .errors import Errors

# Default of every component: the optimizer's own rate.
LEARN_RATE_SCALE = 1.0


def check_learn_rate_scale(where: str, value: Any) -> float:
    """RETURNS (float): `value`, or a ValueError naming `where` unless it is
    a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 < float(value) < float("inf")):
        raise ValueError(Errors.E004.format(where=where, value=value))
    return float(value)


class ScaledLearnRate:
    """An optimizer seen through a learning-rate multiplier: every update it
    makes is `lr_scale * scale` times the optimizer's own step (thinc's
    `Optimizer.__call__(..., lr_scale=...)`). Its state (moments, averages,
    schedules) stays the optimizer's."""

    def __init__(self, optimizer: Any, scale: float) -> None:
        self._optimizer = optimizer
        self._scale = scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self._optimizer(key, weights, gradient, lr_scale=lr_scale * self._scale)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_optimizer":
            raise AttributeError(name)  # no recursion before __init__ ran
        return getattr(self._optimizer, name)


class ScaledLearnRateMixin:
    """For a trainable pipe with `cfg["learn_rate_scale"]`: `finish_update`
    updates its weights at that multiple of the optimizer's learning rate."""

    def finish_update(self, sgd: Any) -> None:
        """Update the weights with their gradients, at `learn_rate_scale`
        times the optimizer's learning rate.

        sgd (thinc.api.Optimizer): The optimizer.
        """
        scale = self.cfg.get("learn_rate_scale", 1.0)  # type: ignore[attr-defined]
        self.model.finish_update(sgd if scale == 1.0 else ScaledLearnRate(sgd, scale))  # type: ignore[attr-defined]
