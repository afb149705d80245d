"""The run report: common fields, then the pipeline's results, flat."""

import json

import pytest

from medimg import __version__
from medimg.common.errors import InputError
from medimg.common.models import build_network, weights_metadata
from medimg.common.predictor import LazyModel
from medimg.common.report import COMMON_FIELDS, RunReport
from medimg.common.tables import read_json
from medimg.common.weights import save_weights


def _report():
    return RunReport(
        command="mandible segment",
        input="ct/case1",
        results={"volume_mm3": 1234.5, "slices": 80},
        seconds_per_stage={"read": 0.5, "predict": 2.25},
        options={"threshold": 0.5},
        notes=["window clipped"],
    )


def test_to_dict_has_the_common_fields_and_flat_results():
    data = _report().to_dict()
    assert list(data) == [
        "medimg_version", "command", "input", "volume_mm3", "slices",
        "arch", "weights", "device", "seconds_per_stage", "options", "notes",
    ]
    assert set(COMMON_FIELDS) <= set(data)
    assert data["medimg_version"] == __version__
    assert data["command"] == "mandible segment" and data["input"] == "ct/case1"
    assert data["volume_mm3"] == 1234.5 and data["slices"] == 80
    assert data["arch"] == "n/a" and data["weights"] == "custom predictor" and data["device"] == "n/a"
    assert data["seconds_per_stage"] == {"read": 0.5, "predict": 2.25}
    assert data["options"] == {"threshold": 0.5}
    assert data["notes"] == ["window clipped"]


@pytest.mark.parametrize("key", ["device", "input", "notes"])
def test_a_result_named_like_a_common_field_is_refused(key):
    report = RunReport(command="oct extract", input="scan.tif", results={key: 1, "glands": 3})
    with pytest.raises(InputError, match=key):
        report.to_dict()


def test_write_json_round_trips(tmp_path):
    report = _report()
    path = report.write_json(tmp_path / "out" / "report.json")
    assert path == tmp_path / "out" / "report.json"
    assert read_json(path) == report.to_dict()
    assert json.loads(path.read_text())["volume_mm3"] == 1234.5


def test_use_model_with_a_plain_callable_keeps_the_defaults():
    report = RunReport(command="oct extract", input="scan.tif")
    report.use_model(lambda batch: batch)
    assert (report.arch, report.weights, report.device) == ("n/a", "custom predictor", "n/a")


def test_use_model_fills_arch_weights_and_device_from_a_lazy_model(tmp_path):
    net = build_network("oct-light", {"channels": [4, 8]})
    path = save_weights(tmp_path / "tiny.safetensors", net.state_dict(), arch="oct-light", metadata=weights_metadata("oct-light", net))
    lazy = LazyModel(arch="oct-light", weights=path, device="cpu")
    report = RunReport(command="oct extract", input="scan.tif")
    report.use_model(lazy)
    assert report.arch == "oct-light"
    assert report.weights == str(path)
    assert report.device == "cpu"
    data = report.to_dict()
    assert (data["arch"], data["weights"], data["device"]) == ("oct-light", str(path), "cpu")
