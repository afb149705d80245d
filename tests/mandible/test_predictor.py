import numpy as np
import pytest
import torch

from medimg.common import weights as weights_module
from medimg.common.errors import ModelError
from medimg.common.weights import save_weights
from medimg.mandible.models import build_model
from medimg.mandible.predictor import check_arch, load_network, load_network_with_metadata, network_predictor

from .conftest import TINY_SIZE, save_tiny_weights


def test_network_is_rebuilt_from_its_metadata_and_gives_the_same_logits(tiny_weights):
    network, source, input_size = load_network("res-cbam-unet", weights=tiny_weights)
    assert source == str(tiny_weights) and input_size == TINY_SIZE and not network.training
    torch.manual_seed(0)
    original = build_model("res-cbam-unet", width=0.125).eval()  # same seed as save_tiny_weights
    x = torch.randn(1, 3, 32, 32)  # fully convolutional: the smallest input checks every weight
    with torch.inference_mode():
        np.testing.assert_array_equal(network(x).numpy(), original(x).numpy())


def test_arch_none_takes_the_files_arch_and_a_wrong_arch_is_refused(tmp_path):
    path = save_tiny_weights(tmp_path / "unet.safetensors", arch="unet", size=96, window_level="300", window_width="1500")
    loaded = load_network_with_metadata(None, weights=path)
    assert (loaded.arch, loaded.input_size, loaded.window) == ("unet", 96, (300.0, 1500.0))
    assert loaded.network.arch == "unet"
    with pytest.raises(ModelError, match="expected weights for architecture 'mandible-res-cbam-unet', got 'mandible-unet'"):
        load_network("res-cbam-unet", weights=path)


def test_weights_without_model_config_or_of_another_group_are_refused(tmp_path):
    state = build_model("unet", width=0.125).state_dict()
    bare = save_weights(tmp_path / "bare.safetensors", state, arch="mandible-unet")
    with pytest.raises(ModelError, match="expected 'model_config' in the weights metadata"):
        load_network(None, weights=bare)
    other = save_weights(tmp_path / "oct.safetensors", state, arch="oct-light")
    with pytest.raises(ModelError, match="expected mandible weights"):
        load_network(None, weights=other)


def test_without_shipped_weights_the_error_says_to_pass_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(weights_module, "SHIPPED", {})
    with pytest.raises(ModelError) as caught:
        load_network()
    assert str(caught.value) == (
        "expected the shipped mandible weights, got none in this build; pass --weights (train them with 'medimg mandible train')"
    )
    with pytest.raises(ModelError, match="expected --weights for architecture 'unet'"):
        load_network("unet")
    # Registered but missing from the installation: the registry's verdict, then the way out.
    entry = weights_module.ShippedWeights(name="mandible-res-cbam-unet", filename="absent.safetensors", sha256="0" * 64,
                                          arch="mandible-res-cbam-unet", card="absent.md")
    monkeypatch.setattr(weights_module, "SHIPPED", {entry.name: entry})
    with pytest.raises(ModelError) as caught:
        load_network()
    assert str(caught.value) == (
        "expected the shipped weights file absent.safetensors, got a missing file (reinstall medimg); "
        "or pass --weights (train them with 'medimg mandible train')"
    )


def test_unknown_arch_is_refused_by_name_before_any_file_is_read(tmp_path):
    assert check_arch(None) is None and check_arch("cbam-unet") == "cbam-unet"
    message = "expected an arch among unet, res-unet, cbam-unet, res-cbam-unet, got 'foo'"
    with pytest.raises(ModelError) as caught:
        load_network("foo", weights=tmp_path / "does-not-exist.safetensors")
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "config, got",
    [
        ("[0.125]", "got '[0.125]' in 'bad.safetensors'"),
        ("not json", "got 'not json' in 'bad.safetensors'"),
        ('{"width": 0.125, "depth": 3}', "got {'width': 0.125, 'depth': 3} in 'bad.safetensors' ("),
    ],
)
def test_malformed_model_config_is_one_model_error(tmp_path, config, got):
    state = build_model("unet", width=0.125).state_dict()
    path = save_weights(tmp_path / "bad.safetensors", state, arch="mandible-unet", metadata={"model_config": config})
    with pytest.raises(ModelError) as caught:
        load_network(None, weights=path)
    message = str(caught.value)
    assert "\n" not in message and got in message
    assert message.startswith("expected a JSON object under 'model_config'" if config[0] != "{" else
                              "expected model_config keywords that build_model('unet') accepts")


def test_predictor_returns_sigmoid_probabilities_independent_of_batching(tmp_path):
    network, _, size = load_network(weights=save_tiny_weights(tmp_path / "tiny32.safetensors", size=32))
    assert size == 32
    x = np.random.default_rng(0).normal(size=(3, 3, size, size)).astype(np.float32)
    by_two = network_predictor(network, torch.device("cpu"), batch_size=2)(x)
    at_once = network_predictor(network, torch.device("cpu"), batch_size=3)(x)
    assert by_two.shape == (3, size, size) and by_two.dtype == np.float32
    np.testing.assert_allclose(by_two, at_once, atol=1e-6)
    with torch.inference_mode():
        expected = torch.sigmoid(network(torch.from_numpy(x))[:, 0]).numpy()
    np.testing.assert_allclose(by_two, expected, atol=1e-6)
    assert 0.0 <= by_two.min() and by_two.max() <= 1.0
