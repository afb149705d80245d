"""`acne grade --workers 2`: one task per photo on a LocalCluster, the same table as the serial run."""

import pytest
from typer.testing import CliRunner

from medimg.cli import app

pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'medimg[dask]')")
runner = CliRunner()


def test_grading_on_two_dask_workers_matches_the_serial_run(tiny_acne04, random_weights, tmp_path):
    photos = sorted(str(p) for p in (tiny_acne04 / "JPEGImages").glob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    batch = photos[:3] + [str(broken)] + photos[3:]
    common = ["acne", "grade", *batch, "--weights", str(random_weights), "--csv", "--device", "cpu"]

    serial = runner.invoke(app, [*common, "--report", str(tmp_path / "serial.json")])
    on_dask = runner.invoke(app, [*common, "--report", str(tmp_path / "dask.json"), "--workers", "2"])

    for result in (serial, on_dask):
        assert result.exit_code == 1, result.output
        assert f"Error: {broken}:" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"Error: 1 of {len(batch)} images failed"
    rows = on_dask.stdout.strip().splitlines()
    assert len(rows) == 1 + len(photos)
    assert [row.split(",")[0] for row in rows[1:]] == photos  # input order
    # the same grades and counts; probabilities to 1e-4 (a worker's torch may sum in another order
    # than this process's, and a value on a rounding edge then prints one digit differently)
    serial_rows = serial.stdout.strip().splitlines()
    assert rows[0] == serial_rows[0]
    for dask_row, serial_row in zip(rows[1:], serial_rows[1:]):
        for dask_cell, serial_cell in zip(dask_row.split(","), serial_row.split(","), strict=True):
            assert dask_cell == serial_cell or float(dask_cell) == pytest.approx(float(serial_cell), abs=1e-4)

    import json

    serial_report, dask_report = (json.loads((tmp_path / name).read_text()) for name in ("serial.json", "dask.json"))
    assert dask_report["grade_counts"] == serial_report["grade_counts"]
    assert dask_report["failures"] == serial_report["failures"] and len(dask_report["failures"]) == 1
    assert set(dask_report["seconds_per_stage"]) >= {"read", "infer"}  # the workers' stage times, gathered
