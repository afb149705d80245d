"""Typed errors raised by library code and turned into ``Error: ...`` lines at the CLI edge.

Messages follow the "expected X, got Y" pattern so a user knows what to change.
"""

from __future__ import annotations


class MedimgError(Exception):
    """Base class of every error a user can cause and fix."""


class InputError(MedimgError):
    """A path, shape, or value given by the user is not usable."""


class FormatError(InputError):
    """A file exists but its content is not in the expected format."""


class ModelError(MedimgError):
    """A model name, architecture, or weights file is not usable."""


class DeviceError(MedimgError):
    """The requested compute device is not available."""


class OutputError(MedimgError):
    """An output cannot be written where it was asked for."""


def expected(what: str, got: object) -> str:
    """Format the house style of error message: ``expected <what>, got <got>``."""
    return f"expected {what}, got {got}"
