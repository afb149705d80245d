"""`oct extract --workers 2`: four phantoms and a corrupt file on a LocalCluster, same outputs as serial."""

import pytest
from typer.testing import CliRunner

from medimg.cli import app
from tests.same_outputs import assert_same_outputs

pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'medimg[dask]')")
runner = CliRunner()


def test_a_batch_on_two_dask_workers_matches_the_serial_run(tmp_path):
    scans = []
    for seed in (1, 2, 3, 4):
        scan = tmp_path / f"p{seed}.tif"
        assert runner.invoke(app, ["oct", "synth", str(scan), "--shape", "80,112,80", "--seed", str(seed)]).exit_code == 0
        scans.append(str(scan))
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00not really a tiff")
    batch = scans[:2] + [str(corrupt)] + scans[2:]

    # one pass per block (not the default): quicker, and a worker that dropped the option would differ
    options = ["--no-denoise", "--test-time", "none"]
    serial = runner.invoke(app, ["oct", "extract", *batch, *options, "-o", str(tmp_path / "serial")])
    on_dask = runner.invoke(app, ["oct", "extract", *batch, *options, "-o", str(tmp_path / "dask"), "--workers", "2"])

    for result in (serial, on_dask):
        assert result.exit_code == 1, result.output
        assert f"Error: {corrupt}: expected a readable TIFF volume" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == "Error: 1 of 5 scans failed"
    assert "5 scans on 2 Dask worker(s)" in on_dask.stderr
    assert on_dask.stdout.replace(str(tmp_path / "dask"), "OUT") == serial.stdout.replace(str(tmp_path / "serial"), "OUT")
    assert len(on_dask.stdout.splitlines()) == 4 * 6  # six files per good scan, in input order
    assert on_dask.stdout.splitlines()[0].endswith("p1_oct/pores.csv")
    assert assert_same_outputs(tmp_path / "serial", tmp_path / "dask") == 4 * 6 + 1  # and the index page


def test_both_engine_options_are_a_usage_error(tmp_path):
    result = runner.invoke(app, ["oct", "extract", "x.tif", "--workers", "2", "--scheduler", "tcp://h:8786"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: expected either --scheduler or --workers, got both"
