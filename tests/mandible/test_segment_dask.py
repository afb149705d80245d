"""`mandible segment --workers 2`: one task per series on a LocalCluster, same files as serial."""

import shutil

import pytest
from typer.testing import CliRunner

from medimg.cli import app
from tests.same_outputs import assert_same_outputs

pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'medimg[dask]')")
runner = CliRunner()


def test_segmenting_on_two_dask_workers_matches_the_serial_run(synthetic_case, tiny_weights, tmp_path):
    series = []
    for name in ("a", "b"):
        shutil.copytree(synthetic_case / "dicom", tmp_path / name)
        series.append(str(tmp_path / name))
    empty = tmp_path / "empty"
    empty.mkdir()
    batch = [series[0], str(empty), series[1]]
    common = ["mandible", "segment", *batch, "--weights", str(tiny_weights), "--format", "nifti,json", "--device", "cpu"]

    serial = runner.invoke(app, [*common, "-o", str(tmp_path / "serial")])
    on_dask = runner.invoke(app, [*common, "-o", str(tmp_path / "dask"), "--workers", "2"])

    for result in (serial, on_dask):
        assert result.exit_code == 1, result.output
        assert f"Error: {empty}:" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == "Error: 1 of 3 series failed"
    assert on_dask.stdout.replace(str(tmp_path / "dask"), "OUT") == serial.stdout.replace(str(tmp_path / "serial"), "OUT")
    assert len(on_dask.stdout.splitlines()) == 4
    assert assert_same_outputs(tmp_path / "serial", tmp_path / "dask") == 4
