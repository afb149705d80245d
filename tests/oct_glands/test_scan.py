import numpy as np
import tifffile

from medimg.oct_glands.scan import as_uint8, load_scan


def test_uint8_passes_through_untouched():
    volume = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert as_uint8(volume) is volume


def test_sixteen_bit_scans_are_rescaled_with_a_warning(tmp_path, capsys):
    volume = np.zeros((80, 80, 80), np.uint16)
    volume[:, 40:, :] = 4000
    tifffile.imwrite(tmp_path / "u16.tif", volume, photometric="minisblack")
    scan = load_scan(tmp_path / "u16.tif")
    assert scan.dtype == np.uint8
    assert scan[0, 0, 0] == 0 and scan[0, 79, 0] == 255
    assert "Warning: volume has dtype uint16" in capsys.readouterr().err


def test_a_nan_voxel_in_a_float_scan_is_refused_with_its_position(tmp_path):
    import pytest

    from medimg.common.errors import FormatError

    volume = np.random.default_rng(0).random((4, 8, 6)).astype(np.float32)
    volume[2, 5, 3] = np.nan
    volume[3, 0, 0] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", volume, photometric="minisblack")
    with pytest.raises(FormatError, match=r"finite voxel values, got 2 NaN or infinite voxel\(s\), the first at \(y, z, x\) = \(2, 5, 3\)"):
        load_scan(tmp_path / "nan.tif", require_block=False)


def test_a_constant_scan_is_said_on_stderr(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "flat.tif", np.full((4, 8, 6), 17, np.uint8), photometric="minisblack")
    assert load_scan(tmp_path / "flat.tif", require_block=False).max() == 17
    assert "'flat.tif' is constant (17 everywhere" in capsys.readouterr().err


def test_a_nan_scan_on_the_cli_is_one_error_line_and_exit_1(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    volume = np.zeros((80, 80, 80), np.float32)
    volume[1, 1, 1] = np.nan
    tifffile.imwrite(tmp_path / "scan.tif", volume, photometric="minisblack")
    result = CliRunner().invoke(app, ["oct", "surface", str(tmp_path / "scan.tif"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: expected finite voxel values") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_scan_read_for_in_place_work_is_its_own_writable_array(tmp_path):
    volume = np.arange(3 * 80 * 80 * 2, dtype=np.uint8).reshape(3, 80, 160)[:, :, :80].copy()
    volume = np.tile(volume, (27, 1, 1))[:80]
    tifffile.imwrite(tmp_path / "scan.tif", volume)
    mapped = load_scan(tmp_path / "scan.tif")
    own = load_scan(tmp_path / "scan.tif", mmap=False)
    assert not mapped.flags.writeable and own.flags.writeable and isinstance(mapped, np.memmap) and not isinstance(own, np.memmap)
    np.testing.assert_array_equal(own, mapped)
