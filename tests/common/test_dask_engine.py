"""The batch runner's Dask engine: same policy, same order, one model load per worker process."""

import pickle
import subprocess
import sys

import pytest

from medimg.common.batch import BatchEngine, Failure, run_batch
from medimg.common.errors import EngineError, InputError, ModelError, OptionValueError

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'medimg[dask]')")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on this machine, shared by the tests of this module."""
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as local:
        yield local


def test_engine_options_are_checked_before_any_work():
    assert not BatchEngine().uses_dask
    assert BatchEngine(workers=2).uses_dask and BatchEngine(scheduler="tcp://h:8786").uses_dask
    with pytest.raises(OptionValueError, match="expected either --scheduler or --workers, got both"):
        BatchEngine(scheduler="tcp://h:8786", workers=2)
    with pytest.raises(OptionValueError, match="expected --workers >= 1, got 0"):
        BatchEngine(workers=0)


def test_without_an_engine_dask_is_not_imported():
    code = (
        "import sys\n"
        "from medimg.common.batch import run_batch\n"
        "assert run_batch([1, 2], lambda x: x * 2).results == [2, 4]\n"
        "print('dask' in sys.modules, 'distributed' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False False"


def test_tasks_keep_input_order_and_report_failures_by_name(cluster, capsys):
    def run_one(item: int) -> tuple[int, int]:
        import os
        import time

        if item == 3:
            raise InputError("expected an even number of frames, got 3")
        time.sleep(0.05 * (6 - item))  # later items finish first
        return item * item, os.getpid()

    outcome = run_batch([1, 2, 3, 4, 5], run_one, engine=BatchEngine(scheduler=cluster.scheduler_address), noun="scans")
    assert [square for square, _ in outcome.results] == [1, 4, 16, 25]
    assert outcome.failures == [Failure("3", "expected an even number of frames, got 3")]
    assert outcome.total == 5 and outcome.exit_code == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-2:] == ["Error: 3: expected an even number of frames, got 3", "Error: 1 of 5 scans failed"]
    workers = {pid for _, pid in outcome.results}
    assert len(workers) <= 2 and sys.modules["os"].getpid() not in workers  # ran in the worker processes


def test_an_error_of_every_item_alike_stops_the_batch(cluster):
    def run_one(item: int) -> int:
        raise ModelError("expected a safetensors weights file, got a zip")

    with pytest.raises(ModelError, match="expected a safetensors weights file"):
        run_batch([1, 2, 3], run_one, engine=BatchEngine(scheduler=cluster.scheduler_address))


def test_one_item_raises_its_own_error_as_the_serial_runner_does(cluster):
    def run_one(item: str) -> str:
        raise InputError(f"expected a TIFF, got {item}")

    with pytest.raises(InputError, match="expected a TIFF, got a.png"):
        run_batch(["a.png"], run_one, engine=BatchEngine(scheduler=cluster.scheduler_address))


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch):
    import medimg.common.dask_engine as dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(EngineError, match="expected a running Dask scheduler at tcp://127.0.0.1:9"):
        run_batch([1, 2], lambda item: item, engine=BatchEngine(scheduler="tcp://127.0.0.1:9"))


def test_a_lazy_model_pickles_as_options_and_loads_once_per_process(tmp_path):
    import torch

    from medimg.common.predictor import LazyModel
    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    path = save_weights(tmp_path / "w.safetensors", build_model("light").state_dict(), arch="oct-light")
    original = LazyModel(weights=path, group="oct", device="cpu")
    original.load()
    data = pickle.dumps(original)
    assert len(data) < 2000  # options only: no tensors travel
    first, second = pickle.loads(data), pickle.loads(data)
    assert first.source == "not loaded"
    assert first.model is second.model  # the second copy reuses the first copy's network
    assert first.model is not original.model
    batch = torch.zeros(1, 1, 16, 16, 16).numpy()
    assert first(batch).shape == original(batch).shape
