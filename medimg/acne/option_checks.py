"""Checks of network options: every bad value becomes a ModelError that says what was expected.

Shared by the acne backbones (:mod:`~medimg.acne.resnet`, :mod:`~medimg.acne.vit`) and their
assembly (:mod:`~medimg.acne.models`), so that ``build_model(..., depth=0)`` fails with one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from medimg.common.errors import ModelError, expected


def positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(expected(f"{what} as a positive integer", repr(value)))
    return value


def positive_ints(value: object, what: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ModelError(expected(f"{what} as a non-empty sequence of positive integers", repr(value)))
    return tuple(positive_int(v, f"every entry of {what}") for v in value)


def fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ModelError(expected(f"{what} in [0, 1)", repr(value)))
    return float(value)


def positive_float(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ModelError(expected(f"{what} as a positive number", repr(value)))
    return float(value)
