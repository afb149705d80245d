import numpy as np
import pytest

from medimg.common.denoisers import DEFAULT_DENOISER, DENOISERS, build_denoiser, checked, denoise_stack, region_sigma
from medimg.common.errors import DeviceNameError, InputError


@pytest.mark.parametrize("name", ["bm3d", "bm3d-reference"])
def test_the_registry_builds_bm3d_with_its_options(name):
    assert DEFAULT_DENOISER == "bm3d"  # ours, in torch; the package stays by name
    rng = np.random.default_rng(0)
    clean = np.zeros((48, 48), np.float32)
    clean[:, 24:] = 0.6
    noisy = clean + rng.normal(0, 0.08, clean.shape).astype(np.float32)
    denoised = build_denoiser(name, stage="hard")(noisy, 0.08)
    assert denoised.dtype == np.float32 and denoised.shape == noisy.shape
    assert np.sqrt(np.mean((denoised - clean) ** 2)) < np.sqrt(np.mean((noisy - clean) ** 2)) / 2.5


def test_our_bm3d_takes_stacks_and_the_reference_goes_one_by_one():
    rng = np.random.default_rng(1)
    stack = rng.normal(0.5, 0.05, (3, 24, 32)).astype(np.float32)
    ours = build_denoiser("bm3d", device="cpu", batch_size=3)
    assert ours.batch_size == 3 and build_denoiser("bm3d", device="cpu").batch_size == 1  # one at a time on a CPU
    together = denoise_stack(ours, stack, 0.05)
    np.testing.assert_allclose(together[1], build_denoiser("bm3d", device="cpu")(stack[1], 0.05), atol=1e-5)
    reference = build_denoiser("bm3d-reference")
    assert reference.batch_size == 1
    with pytest.raises(InputError, match="expected a 2-D image to denoise, got shape"):
        reference(stack, 0.05)
    assert denoise_stack(reference, stack, 0.05).shape == stack.shape


def test_unknown_names_and_options_are_refused_by_name():
    with pytest.raises(InputError, match="expected a denoiser among bm3d, bm3d-reference, got 'nlm'"):
        build_denoiser("nlm")
    with pytest.raises(InputError, match="expected bm3d-reference options among stage, got radius"):
        build_denoiser("bm3d-reference", radius=3)
    with pytest.raises(InputError, match="expected bm3d options among batch_size, device, stage, got radius"):
        build_denoiser("bm3d", radius=3)
    with pytest.raises(DeviceNameError, match="expected --device auto, cpu, cuda or cuda:N, got 'tpu'"):
        build_denoiser("bm3d", device="tpu")


def test_the_protocol_checks_inputs_and_output_shape():
    halve = checked(lambda image, sigma: image / 2)
    np.testing.assert_array_equal(halve(np.full((2, 3), 4, np.uint8), 1.0), np.full((2, 3), 2, np.float32))
    with pytest.raises(InputError, match="2-D image"):
        halve(np.zeros((1, 2, 3)), 1.0)
    with pytest.raises(InputError, match="noise sigma > 0"):
        halve(np.zeros((2, 3)), 0.0)
    with pytest.raises(InputError, match="denoised image of shape"):
        checked(lambda image, sigma: image[:1])(np.zeros((2, 3)), 1.0)


def test_region_sigma_is_the_std_inside_the_region_or_none_when_too_small():
    values = np.zeros((10, 10))
    values[:5] = np.tile([1.0, -1.0], 25).reshape(5, 10)  # std 1 in the top half
    region = np.zeros((10, 10), bool)
    region[:5] = True
    assert region_sigma(values, region, min_voxels=50) == pytest.approx(1.0)
    assert region_sigma(values, region, min_voxels=51) is None


def test_a_registered_denoiser_gets_only_the_options_it_declares(monkeypatch):
    from dataclasses import dataclass

    from medimg.common import denoisers
    from medimg.oct_glands.denoise import denoise_volume

    @dataclass(frozen=True)
    class NoOptions:
        pass

    registry = {**denoisers.DENOISERS, "identity": denoisers.DenoiserEntry(NoOptions, lambda options: lambda image, sigma: image)}
    monkeypatch.setattr(denoisers, "DENOISERS", registry)
    assert denoisers.denoiser_options("identity", stage="hard") == NoOptions()
    volume = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    np.testing.assert_array_equal(denoise_volume(volume, sigma=3.0, denoiser="identity", stage="hard"), volume)


def test_the_reference_without_its_package_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bm3d", None)  # as if not installed: import raises ImportError
    with pytest.raises(InputError, match=r"expected the bm3d package for --denoiser bm3d-reference \(pip install 'medimg\[reference\]'\), got none installed"):
        build_denoiser("bm3d-reference")
    assert build_denoiser("bm3d", device="cpu")(np.full((16, 16), 0.5, np.float32), 0.1).shape == (16, 16)  # ours needs no package
