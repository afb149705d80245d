import numpy as np
import pytest
import torch

from medimg.common.errors import InputError, ModelError
from medimg.common.weights import save_weights
from medimg.mandible.inference import InferenceOptions, mandible_network, network_settings, predict_volume
from medimg.mandible.models import build_model

from .conftest import TINY_SIZE, save_tiny_weights


def network_of(weights, arch=None):
    return mandible_network(InferenceOptions(model=arch, weights=weights, device="cpu"))


def test_network_is_rebuilt_from_its_metadata_and_gives_the_same_logits(tiny_weights):
    network = network_of(tiny_weights, "res-cbam-unet")
    model = network.load()
    assert network.source == str(tiny_weights) and model.preprocessing["input_size"] == TINY_SIZE and not model.network.training
    torch.manual_seed(0)
    original = build_model("res-cbam-unet", width=0.125).eval()  # same seed as save_tiny_weights
    x = torch.randn(1, 3, 32, 32)  # fully convolutional: the smallest input checks every weight
    with torch.inference_mode():
        np.testing.assert_array_equal(network(x.numpy()), original(x).numpy())


def test_arch_none_takes_the_files_arch_and_a_wrong_arch_is_refused(tmp_path):
    path = save_tiny_weights(tmp_path / "unet.safetensors", arch="unet", size=96, window_level="300", window_width="1500")
    network = network_of(path)
    settings = network_settings(network)
    assert (network.model.arch, settings.input_size, settings.level, settings.width) == ("mandible-unet", 96, 300.0, 1500.0)
    with pytest.raises(ModelError, match="expected weights for architecture 'mandible-res-cbam-unet', got 'mandible-unet'"):
        network_of(path, "res-cbam-unet").load()


def test_weights_of_another_group_are_refused(tmp_path):
    state = build_model("unet", width=0.125).state_dict()
    bare = save_weights(tmp_path / "bare.safetensors", state, arch="mandible-unet")
    with pytest.raises(ModelError, match="of another shape"):  # no config: the builder's defaults (width 1) do not fit
        network_of(bare).load()
    other = save_weights(tmp_path / "oct.safetensors", state, arch="oct-light")
    with pytest.raises(ModelError, match="expected mandible weights"):
        network_of(other).load()


def test_shipped_weights_are_the_default_and_other_archs_need_weights():
    network = mandible_network(InferenceOptions(device="cpu"))
    assert network.load().arch == "mandible-res-cbam-unet" and network.source == "shipped:mandible-res-cbam-unet"
    with pytest.raises(ModelError, match="expected --weights for 'mandible-unet'"):
        mandible_network(InferenceOptions(model="unet")).load()
    with pytest.raises(ModelError, match="expected a model among cbam-unet, res-cbam-unet, res-unet, unet, got 'foo'"):
        mandible_network(InferenceOptions(model="foo"))


def test_a_custom_predictor_needs_an_input_size_of_a_multiple_of_32():
    with pytest.raises(InputError, match="input_size with a custom predictor"):
        network_settings(lambda batch: batch)
    with pytest.raises(InputError, match="multiple of 32"):
        network_settings(lambda batch: batch, input_size=48)
    settings = network_settings(lambda batch: batch, input_size=64)
    assert (settings.level, settings.width) == (400.0, 2000.0)


def test_slices_are_predicted_in_chunks_resampled_and_activated_once():
    hu = np.zeros((5, 40, 50), np.float32)
    hu[:, :, 25:] = 1000.0
    calls = []

    def bone_logits(batch):  # bright (windowed > 0.5) -> logit +4, else -4
        calls.append(len(batch))
        windowed = batch[:, :1] * 0.229 + 0.485
        return np.where(windowed > 0.5, 4.0, -4.0).astype(np.float32)

    probabilities = predict_volume(hu, bone_logits, input_size=32, level=400.0, width=2000.0, chunk=2)
    assert calls == [2, 2, 1] and probabilities.shape == hu.shape and probabilities.dtype == np.float32
    sigmoid = lambda t: 1 / (1 + np.exp(-t))
    np.testing.assert_allclose(probabilities[:, :, :20], sigmoid(-4.0), rtol=1e-5)
    np.testing.assert_allclose(probabilities[:, :, 30:], sigmoid(4.0), rtol=1e-5)
    with pytest.raises(ModelError, match=r"expected logits of shape \(2, 1, 32, 32\), got \(2, 32, 32\)"):
        predict_volume(hu, lambda batch: np.zeros((len(batch), 32, 32), np.float32), input_size=32, level=400.0, width=2000.0, chunk=2)


def test_batches_give_the_same_logits(tmp_path):
    weights = save_tiny_weights(tmp_path / "tiny32.safetensors", size=32)
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    by_two = mandible_network(InferenceOptions(weights=weights, device="cpu", batch_size=2))(x)
    at_once = mandible_network(InferenceOptions(weights=weights, device="cpu", batch_size=3))(x)
    assert by_two.shape == (3, 1, 32, 32)
    np.testing.assert_allclose(by_two, at_once, atol=1e-5)


def test_the_weights_input_statistics_and_channels_reach_the_network():
    hu = np.full((2, 16, 16), 400.0, np.float32)  # the middle of the default window: 0.5 after windowing
    seen = []

    def capture(batch):
        seen.append(batch.copy())
        return np.zeros((len(batch), 1, 32, 32), np.float32)

    predict_volume(hu, capture, input_size=32, level=400.0, width=2000.0, mean=(0.25,), std=(0.5,))
    assert seen[0].shape == (2, 1, 32, 32)  # one channel, as the statistics say
    np.testing.assert_allclose(seen[0], (0.5 - 0.25) / 0.5, rtol=1e-6)
