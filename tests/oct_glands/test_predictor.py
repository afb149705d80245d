import numpy as np
import pytest

from medimg.common.errors import ModelError
from medimg.common.weights import SHIPPED, SHIPPED_DIR, sha256_of
from medimg.oct_glands.predictor import load_network, network_predictor


def test_shipped_light_weights_match_their_digest_and_load():
    entry = SHIPPED["oct-light"]
    assert sha256_of(SHIPPED_DIR / entry.filename) == entry.sha256
    assert (SHIPPED_DIR / entry.card).exists()
    network, source = load_network("light")
    assert source == "shipped:oct-light" and not network.training


def test_standard_model_needs_explicit_weights():
    with pytest.raises(ModelError, match="expected --weights for model 'standard'"):
        load_network("standard")


def test_weights_of_the_other_architecture_are_refused(tmp_path):
    import torch

    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    path = save_weights(tmp_path / "s.safetensors", build_model("standard").state_dict(), arch="oct-standard")
    with pytest.raises(ModelError, match="expected weights for architecture 'oct-light', got 'oct-standard'"):
        load_network("light", weights=path)
    assert torch.is_tensor(next(iter(build_model("light").state_dict().values())))


def test_predictor_returns_probabilities_of_the_block_shape():
    import torch

    network, _ = load_network("light")
    predict = network_predictor(network, torch.device("cpu"))
    blocks = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 16), dtype=np.uint8)
    probability = predict(blocks)
    assert probability.shape == blocks.shape and probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0


@pytest.mark.slow
def test_shipped_network_finds_the_phantoms_glands():
    from medimg.common.metrics import ConfusionCounts
    from medimg.oct_glands.blend import predict_and_merge
    from medimg.oct_glands.denoise import denoise_volume
    from medimg.oct_glands.phantom import make_phantom
    from medimg.oct_glands.roi import extract_blocks, roi_corners
    from medimg.oct_glands.surface import detect_surface
    from medimg.oct_glands.threshold import binarize

    import torch

    phantom = make_phantom((80, 112, 120), seed=999)
    volume = denoise_volume(phantom.volume)
    corners = roi_corners(detect_surface(volume), volume.shape)
    predict = network_predictor(load_network("light")[0], torch.device("cpu"))
    probability = predict_and_merge(lambda b: extract_blocks(volume, corners[b], size=80), corners, volume.shape, predictor=predict)
    mask, _ = binarize(probability)
    assert ConfusionCounts.from_masks(mask, phantom.glands > 0).dice > 0.7
