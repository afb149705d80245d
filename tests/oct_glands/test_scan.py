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
