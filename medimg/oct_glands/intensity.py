"""OCT grey levels <-> the unit range the denoiser works in.

Scanner exports are usually log-compressed already (``domain="log"``), where speckle is additive
and one sigma fits the whole B-scan; linear-intensity exports (``domain="linear"``) are
log-transformed first and mapped back after.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import OptionValueError, expected

DOMAINS = ("log", "linear")
_LOG_SPAN = np.log1p(255.0)


def check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise OptionValueError(expected(f"a domain among {', '.join(DOMAINS)}", repr(domain)))


def to_unit(bscan: np.ndarray, domain: str) -> np.ndarray:
    """uint8 grey levels -> float32 in [0, 1], log-compressed."""
    values = bscan.astype(np.float32)
    return values / np.float32(255.0) if domain == "log" else (np.log1p(values) / np.float32(_LOG_SPAN)).astype(np.float32)


def from_unit(unit: np.ndarray, domain: str) -> np.ndarray:
    """Inverse of :func:`to_unit`, rounded and clipped to uint8."""
    unit = np.asarray(unit, dtype=np.float64)
    values = unit * 255.0 if domain == "log" else np.expm1(unit * _LOG_SPAN)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
