"""The settings of `spanbert_rel`, checked once at construction."""

from typing import Any, Dict, List, Optional

from ..errors import Errors, check_key, check_positive


def check_settings(
    name, spans_key, threshold, thresholds, max_distance, within_sentence, max_pairs, negative_ratio
) -> None:
    """Raise a ValueError naming the component for a bad setting."""
    if isinstance(negative_ratio, bool) or not isinstance(negative_ratio, (int, float)) or not negative_ratio >= 0:
        raise ValueError(Errors.E500.format(name=name, value=negative_ratio))
    if spans_key is not None:
        check_key(name, "spans_key", spans_key)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(Errors.E006.format(name=name, value=threshold))
    if thresholds is not None:
        ok = isinstance(thresholds, dict) and all(
            isinstance(k, str) and not isinstance(v, bool) and isinstance(v, (int, float)) and 0.0 <= v <= 1.0
            for k, v in thresholds.items()
        )
        if not ok:
            raise ValueError(Errors.E501.format(name=name, value=thresholds))
    check_positive(name, "max_distance", max_distance, allow_zero=True)
    check_positive(name, "max_pairs", max_pairs)
    if not isinstance(within_sentence, bool):
        raise ValueError(Errors.E008.format(name=name, setting="within_sentence", value=within_sentence))


def check_constraints(name: str, value: Any) -> Optional[Dict[str, List[List[str]]]]:
    """RETURNS (Optional[Dict[str, List[List[str]]]]): The allowed (head
    type, tail type) per label of a dict setting; None for "none" and (until
    initialize) "learned"."""
    if value in ("none", "learned"):
        return None
    ok = isinstance(value, dict) and all(
        isinstance(label, str)
        and isinstance(pairs, (list, tuple))
        and all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in pairs)
        for label, pairs in value.items()
    )
    if not ok:
        raise ValueError(Errors.E502.format(name=name, value=value))
    return {label: [list(p) for p in pairs] for label, pairs in value.items()}
