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


class UsageError(MedimgError):
    """An option's value is not one the command accepts (exit code 2 at the CLI, as Typer's own
    usage errors). Mixed into the concrete errors below so library callers can still catch them
    by what they are about."""


class OptionValueError(InputError, UsageError):
    """A bad option value about the input's handling (axes, thresholds, criteria)."""


class UnknownModelError(ModelError, UsageError):
    """A model name that is not registered."""


class DeviceNameError(DeviceError, UsageError):
    """A device string that is not a device at all (``--device tpu``), not a missing GPU."""


def expected(what: str, got: object) -> str:
    """Format the house style of error message: ``expected <what>, got <got>``."""
    return f"expected {what}, got {got}"


class EngineError(MedimgError):
    """The engine a batch was sent to (a Dask scheduler, its workers) cannot run it."""
