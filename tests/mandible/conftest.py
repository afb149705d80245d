import shutil
from pathlib import Path

import numpy as np
import pytest

TINY_SIZE = 64  # network input side of the test weights (a multiple of 32)
TINY_WIDTH = 0.125


def pydicom_files() -> Path:
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files"
    if not (path / "CT_small.dcm").exists():
        pytest.skip("pydicom's test files are not installed")
    return path


def save_tiny_weights(path: Path, *, arch: str = "res-cbam-unet", size: int = TINY_SIZE, seed: int = 0, **extra) -> Path:
    """A seeded, untrained network saved the way 'medimg mandible train' saves one."""
    import json

    import torch

    from medimg.common.weights import save_weights
    from medimg.mandible.models import build_model, model_config

    torch.manual_seed(seed)
    network = build_model(arch, width=TINY_WIDTH)
    metadata = {"model_config": json.dumps(model_config(network)), "input_size": str(size), **extra}
    return save_weights(path, network.state_dict(), arch=f"mandible-{arch}", metadata=metadata)


@pytest.fixture(autouse=True)
def _fast_tiny_networks():
    """Run the tiny test networks on torch's native CPU convolutions, with denormals flushed to zero.

    oneDNN sets its kernels up per input shape, which costs seconds per new shape on these
    few-kilobyte networks (more on a loaded machine); the native kernels take milliseconds, but an
    untrained network in eval mode drives activations into denormal floats, which the CPU handles
    some hundred times slower unless they are flushed. Neither changes what the tests assert:
    every comparison is made within one process, far above denormal magnitudes.
    """
    import torch

    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.backends.mkldnn.enabled = enabled


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    return save_tiny_weights(tmp_path / "tiny.safetensors")


@pytest.fixture
def ct_small_dir(tmp_path) -> Path:
    """pydicom's real single-slice CT (128 x 128) alone in a folder."""
    folder = tmp_path / "ct_small"
    folder.mkdir()
    shutil.copy(pydicom_files() / "CT_small.dcm", folder / "CT_small.dcm")
    return folder


@pytest.fixture
def ct5n_dir(tmp_path) -> Path:
    """pydicom's real 5-slice CT (16 x 16, reversed numbering) beside a scout series and a DICOMDIR."""
    folder = tmp_path / "ct5n"
    shutil.copytree(pydicom_files() / "dicomdirtests" / "98892001", folder / "98892001")
    shutil.copy(pydicom_files() / "dicomdirtests" / "DICOMDIR", folder / "DICOMDIR")
    return folder


@pytest.fixture
def ct2_gap_dir(tmp_path) -> Path:
    """pydicom's real CT2 series with a 202.5 mm gap (and three CR images)."""
    folder = tmp_path / "ct2"
    shutil.copytree(pydicom_files() / "dicomdirtests" / "77654033", folder / "77654033")
    return folder


SYNTH_SHAPE = (12, 64, 64)


@pytest.fixture(scope="session")
def synthetic_case(tmp_path_factory) -> Path:
    """A small synthetic head CT: case/dicom/*.dcm + case/mandible_mask.nii.gz (read-only for tests)."""
    from medimg.mandible.synth import write_synthetic_series

    case = tmp_path_factory.mktemp("synth") / "case"
    write_synthetic_series(case, seed=3, shape=SYNTH_SHAPE)
    return case


def mask_predictor(mask: np.ndarray):
    """A predictor that answers, chunk after chunk, the given (Z, S, S) mask as confident logits
    (+-20): the pipeline calls it in slice order, so it returns the truth slice for slice."""
    state = {"next": 0}

    def predict(batch: np.ndarray) -> np.ndarray:
        start = state["next"]
        state["next"] += len(batch)
        return np.where(mask[start : start + len(batch), None], 20.0, -20.0).astype(np.float32)

    return predict
