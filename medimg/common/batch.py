"""One batch runner for every command that takes several inputs.

``run_batch(items, run_one)`` runs ``run_one(item)`` for each item in order and gathers results
and failures under one policy: an error that belongs to one input (unreadable file, bad series,
output that cannot be written: :class:`InputError`, :class:`OutputError`) is reported on stderr
by the input's name and the batch goes on; any other error (a bad model or weights file, a
missing device: it would fail every input alike) stops the batch at once. A batch of one input
raises its error as it is, so a single-file command reads like a plain function call.

``run_one`` sees one item and returns one result, so a distributed engine can later fan the
same calls out (a Dask ``Client.map`` in place of the serial loop) under the same policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from medimg.common import console
from medimg.common.errors import InputError, OutputError

T = TypeVar("T")
R = TypeVar("R")

PER_ITEM_ERRORS: tuple[type[Exception], ...] = (InputError, OutputError)


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


def iter_batch(
    items: Sequence[T],
    run_one: Callable[[T], R],
    outcome: BatchOutcome,
    *,
    name_of: Callable[[T], str] = str,
    per_item_errors: tuple[type[Exception], ...] = PER_ITEM_ERRORS,
    progress: Callable[[Sequence[T]], Iterable[T]] | None = None,
    noun: str = "inputs",
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, run_one(item))`` under the batch policy, recording failures in ``outcome``;
    for consumers that must not hold every result at once (photos graded a network batch at a time).
    The consumer ends with ``outcome.report_failures()``."""
    items = list(items)
    outcome.total = len(items)
    for item in progress(items) if progress is not None else items:
        try:
            result = run_one(item)
        except per_item_errors as error:
            if len(items) == 1:
                raise
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
