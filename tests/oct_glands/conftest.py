import numpy as np
import pytest
import tifffile

SHAPE = (80, 100, 120)  # Y, Z, X: one row of two blocks at stride 40
BIG_CUBES = ((20, 30, 20), (50, 40, 90))  # corners (y, z, x) of 8^3 = 512-voxel glands
SMALL_CUBE = (60, 30, 40)  # 4^3 = 64 voxels: pruned


@pytest.fixture
def toy_scan_volume() -> np.ndarray:
    """Air (10) above z = 10, skin (100) below, three bright (250) cubes."""
    volume = np.full(SHAPE, 10, np.uint8)
    volume[:, 10:, :] = 100
    for y, z, x in BIG_CUBES:
        volume[y : y + 8, z : z + 8, x : x + 8] = 250
    y, z, x = SMALL_CUBE
    volume[y : y + 4, z : z + 4, x : x + 4] = 250
    return volume


@pytest.fixture
def toy_scan(tmp_path, toy_scan_volume):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, toy_scan_volume, photometric="minisblack")
    return path


@pytest.fixture
def random_weights(tmp_path):
    """A seeded, untrained light network saved as safetensors: a real network, reproducible output."""
    import torch

    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    torch.manual_seed(0)
    return save_weights(tmp_path / "light.safetensors", build_model("light").state_dict(), arch="oct-light")
