"""The batch runner's Dask engine: one task per item on a Dask cluster, the batch policy kept.

``--workers N`` starts a ``LocalCluster`` of N worker processes (one thread each) on this
machine for the batch and stops it after; ``--scheduler ADDRESS`` sends the tasks to a running
scheduler (``dask scheduler`` and ``dask worker ADDRESS`` on the nodes, or dask-jobqueue on
SLURM), whose workers must have medimg installed and see the input and output paths (a shared
file system). Each task calls the batch's ``run_one`` on one item inside
:func:`_call_guarded`, which turns a per-item error into a value, so that only errors that would
fail every item alike (bad weights, a missing device) surface as task errors and stop the batch.

A network travels to the workers as its :class:`~medimg.common.predictor.LazyModel` (options,
not tensors) and is loaded once per worker process, on its first task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from medimg.common import console
from medimg.common.errors import EngineError, expected

CONNECT_TIMEOUT_S = 20
INSTALL_HINT = "pip install 'medimg[dask]'"


def _call_guarded(item: Any, run_one: Callable, per_item_errors: tuple[type[Exception], ...]) -> tuple[Any, Exception | None]:
    """On a worker: ``(run_one(item), None)``, or ``(None, error)`` for a per-item error."""
    console.configure(quiet=True)  # progress lines of many workers would interleave on one terminal
    try:
        return run_one(item), None
    except per_item_errors as error:
        return None, error


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise EngineError(expected(f"Dask distributed installed for --workers / --scheduler ({INSTALL_HINT})", "no module 'distributed'")) from None
    return distributed


@contextmanager
def dask_client(engine) -> Iterator[Any]:
    """A ``distributed.Client`` for ``engine`` (a :class:`~medimg.common.batch.BatchEngine`), closed
    (with its ``LocalCluster``) on exit."""
    distributed = _import_distributed()
    if engine.workers is not None:
        cluster = distributed.LocalCluster(n_workers=engine.workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(engine.scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as error:
        raise EngineError(expected(f"a running Dask scheduler at {engine.scheduler}", f"{type(error).__name__}: {error}")) from None
    with client:
        if not client.scheduler_info().get("workers"):
            console.info(f"waiting for a worker to join {engine.scheduler}")
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S * 3)
        yield client


def dask_attempts(
    items: Sequence[Any],
    run_one: Callable,
    *,
    engine,
    per_item_errors: tuple[type[Exception], ...],
    description: str,
) -> Iterator[tuple[Any, Any, Exception | None]]:
    """``(item, result, None)`` or ``(item, None, error)`` per item in input order, once every task
    has finished; any other error of a task cancels the rest and is raised as it was."""
    distributed = _import_distributed()
    with dask_client(engine) as client:
        console.info(f"{len(items)} {description} on {len(client.scheduler_info()['workers'])} Dask worker(s)")
        futures = client.map(_call_guarded, list(items), run_one=run_one, per_item_errors=per_item_errors, pure=False)
        outcomes: dict[str, tuple[Any, Exception | None]] = {}
        for future in console.track(distributed.as_completed(futures), description=description, total=len(futures)):
            if future.status == "error":
                error, traceback = future.exception(), future.traceback()
                client.cancel(futures)
                raise error.with_traceback(traceback)
            outcomes[future.key] = future.result()
        results = [outcomes[future.key] for future in futures]
    for item, (result, error) in zip(items, results):
        yield item, result, error
