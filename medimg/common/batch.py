"""One batch runner for every command that takes several inputs.

``run_batch(items, run_one)`` runs ``run_one(item)`` for each item in order and gathers results
and failures under one policy: an error that belongs to one input (unreadable file, bad series,
output that cannot be written: :class:`InputError`, :class:`OutputError`) is reported on stderr
by the input's name and the batch goes on; any other error (a bad model or weights file, a
missing device: it would fail every input alike) stops the batch at once. A batch of one input
raises its error as it is, so a single-file command reads like a plain function call.

``run_one`` sees one item and returns one result, so an engine can fan the same calls out: by
default they run here, one after another; with a :class:`BatchEngine` naming Dask workers
(``--workers N``: a ``LocalCluster`` on this machine; ``--scheduler ADDRESS``: a running Dask
scheduler) each item is one Dask task (:mod:`medimg.common.dask_engine`) under the same policy,
results still in input order and failures still reported by input name, in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from medimg.common import console
from medimg.common.errors import InputError, OptionValueError, OutputError, expected

T = TypeVar("T")
R = TypeVar("R")

PER_ITEM_ERRORS: tuple[type[Exception], ...] = (InputError, OutputError)


@dataclass(frozen=True)
class BatchEngine:
    """Where a batch's per-item calls run: here, one after another (the default: Dask is not even
    imported), on a ``LocalCluster`` of ``workers`` processes, or on the workers of the running Dask
    scheduler at ``scheduler`` (``tcp://host:8786``); the ``--workers`` / ``--scheduler`` options."""

    scheduler: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None and self.workers is not None:
            raise OptionValueError(expected("either --scheduler or --workers", "both"))
        if self.workers is not None and self.workers < 1:
            raise OptionValueError(expected("--workers >= 1", self.workers))
        if self.scheduler is not None and not self.scheduler.strip():
            raise OptionValueError(expected("a Dask scheduler address such as tcp://host:8786", repr(self.scheduler)))

    @property
    def uses_dask(self) -> bool:
        return self.scheduler is not None or self.workers is not None


HERE = BatchEngine()


@dataclass(frozen=True)
class Failure:
    item: str
    message: str


@dataclass
class BatchOutcome(Generic[R]):
    results: list[R] = field(default_factory=list)  # one per successful item, in input order
    failures: list[Failure] = field(default_factory=list)
    total: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    noun: str = "inputs"

    def tally(self) -> str:
        return f"{len(self.failures)} of {self.total} {self.noun} failed"

    def report_failures(self) -> None:
        """End stderr with the tally (after a batch of several inputs with failures), so that the
        failures are not lost above a long batch's lines; call it last."""
        if self.failures and self.total > 1:
            console.error_line(self.tally())


def _serial_attempts(items, run_one, per_item_errors, progress):
    """``(item, result, None)`` or ``(item, None, error)`` per item, run here in order."""
    for item in progress(items) if progress is not None else items:
        try:
            yield item, run_one(item), None
        except per_item_errors as error:
            if len(items) == 1:
                raise
            yield item, None, error


def iter_batch(
    items: Sequence[T],
    run_one: Callable[[T], R],
    outcome: BatchOutcome,
    *,
    name_of: Callable[[T], str] = str,
    per_item_errors: tuple[type[Exception], ...] = PER_ITEM_ERRORS,
    progress: Callable[[Sequence[T]], Iterable[T]] | None = None,
    noun: str = "inputs",
    engine: BatchEngine = HERE,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, run_one(item))`` under the batch policy, recording failures in ``outcome``;
    for consumers that must not hold every result at once (photos graded a network batch at a time).
    The consumer ends with ``outcome.report_failures()``. With a Dask ``engine``, ``run_one`` and
    its results must pickle; the items run as tasks and are yielded once all have finished."""
    items = list(items)
    outcome.total = len(items)
    if engine.uses_dask:
        from medimg.common.dask_engine import dask_attempts

        attempts = dask_attempts(items, run_one, engine=engine, per_item_errors=per_item_errors, description=noun)
    else:
        attempts = _serial_attempts(items, run_one, per_item_errors, progress)
    for item, result, error in attempts:
        if error is not None:
            if len(items) == 1:
                raise error
            console.error_line(f"{name_of(item)}: {error}")
            outcome.failures.append(Failure(name_of(item), str(error)))
            continue
        yield item, result
    outcome.noun = noun


def run_batch(items: Sequence[T], run_one: Callable[[T], R], **policy) -> BatchOutcome[R]:
    """Run ``run_one`` over ``items`` under the batch policy (module docstring; keywords as
    :func:`iter_batch`).

    Returns
    -------
    BatchOutcome
        Results in input order, and one :class:`Failure` per skipped item; with more than one
        item and any failure, stderr ends with "k of N <noun> failed".
    """
    outcome: BatchOutcome[R] = BatchOutcome()
    outcome.results.extend(result for _, result in iter_batch(items, run_one, outcome, **policy))
    outcome.report_failures()
    return outcome
