import numpy as np
import pytest

from medimg.common.errors import InputError, ModelError
from medimg.common.tiling import tile_reader
from medimg.common.weights import SHIPPED, SHIPPED_DIR, sha256_of
from medimg.oct_glands.inference import InferenceOptions, network_input, oct_network, predict_probability


def test_shipped_light_weights_match_their_digest_and_load_alone():
    entry = SHIPPED["oct-light"]
    assert sha256_of(SHIPPED_DIR / entry.filename) == entry.sha256
    assert (SHIPPED_DIR / entry.card).exists()
    network = oct_network(InferenceOptions(device="cpu"))
    model = network.load()
    assert network.source == "shipped:oct-light" and model.arch == "oct-light" and not model.network.training
    assert model.preprocessing.get("scaling") == "tissue" and "divisor" not in model.preprocessing and model.output["activation"] == "sigmoid"


def test_standard_model_needs_explicit_weights():
    with pytest.raises(ModelError, match="expected --weights for 'oct-standard'"):
        oct_network(InferenceOptions(model="standard", device="cpu")).load()


def test_an_unknown_model_is_refused_before_loading():
    with pytest.raises(ModelError, match="expected a model among light, standard, got .bogus."):
        oct_network(InferenceOptions(model="bogus"))


def test_an_unknown_weighting_is_refused():
    with pytest.raises(InputError, match="--weighting among gaussian, constant"):
        InferenceOptions(weighting="median")


def test_an_unknown_test_time_augmentation_is_refused():
    with pytest.raises(InputError, match="--test-time among none, flips, dihedral"):
        InferenceOptions(test_time="rotate")


def test_test_time_flips_average_each_tiles_logits_with_its_mirror_images():
    # logit = 8 * (input - 0.5) * (x - 1.5) / 1.5 on a 4^3 block of ones: -4, -4/3, 4/3, 4 along x;
    # the X mirror copy sees the ramp reversed, so with flips every logit averages to 0
    block = np.full((1, 4, 4, 4), 255, np.uint8)
    ramp = (np.arange(4, dtype=np.float32) - 1.5) / 1.5
    predictor = lambda batch: 8.0 * (batch - 0.5) * ramp
    arguments = dict(block_size=4, predictor=predictor, weighting="constant", levels=(0.0, 0.0, 255.0))
    plain = predict_probability(lambda batch: block[batch], np.zeros((1, 3), int), (4, 4, 4), **arguments)
    flipped = predict_probability(lambda batch: block[batch], np.zeros((1, 3), int), (4, 4, 4), test_time="flips", **arguments)
    sigmoid = lambda t: 1.0 / (1.0 + np.exp(-t))
    np.testing.assert_allclose(plain[0], np.tile(sigmoid(4.0 * ramp), (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(flipped, 0.5, rtol=1e-6)


def test_weights_of_the_other_architecture_are_refused(tmp_path):
    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    path = save_weights(tmp_path / "s.safetensors", build_model("standard").state_dict(), arch="oct-standard")
    with pytest.raises(ModelError, match="expected weights for architecture 'oct-light', got 'oct-standard'"):
        oct_network(InferenceOptions(model="light", weights=path, device="cpu")).load()
    assert oct_network(InferenceOptions(weights=path, device="cpu")).load().arch == "oct-standard"  # no --model: the file's own


def test_network_input_divides_by_the_weights_divisor():
    blocks = np.array([[[[0, 51], [102, 255]]]], dtype=np.uint8)  # (1, 1, 2, 2)
    batch = network_input(blocks, {"divisor": 255.0})
    assert batch.shape == (1, 1, 1, 2, 2) and batch.dtype == np.float32
    np.testing.assert_allclose(batch.ravel(), [0.0, 0.2, 0.4, 1.0], atol=1e-7)
    with pytest.raises(InputError, match="positive intensity divisor"):
        network_input(blocks, {"divisor": 0})


def test_the_shipped_network_gives_logits_and_the_pipeline_probabilities():
    network = oct_network(InferenceOptions(device="cpu"))
    blocks = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 16), dtype=np.uint8)
    levels = (20.0, 120.0, 230.0)  # the shipped weights scale by the scan's tissue levels
    logits = network(network_input(blocks, network.model.preprocessing, levels))
    assert logits.shape == (2, 1, 16, 16, 16) and logits.dtype == np.float32
    assert logits.min() < 0 or logits.max() > 1  # raw scores, not probabilities
    corners = np.array([[0, 0, 0]])
    probability = predict_probability(lambda b: blocks[:1], corners, (16, 16, 16), block_size=16, predictor=network, levels=levels)
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-logits[0, 0].astype(np.float64))), atol=1e-4)  # batch of 2 vs 1: float rounding


def test_blocks_blend_their_logits_and_uncovered_voxels_get_zero():
    # two 4^3 blocks overlapping on x 2-3; block 0 is all 0, block 1 all 255; logit = 4 x - 2
    blocks = np.stack([np.zeros((4, 4, 4), np.uint8), np.full((4, 4, 4), 255, np.uint8)])
    corners = np.array([[0, 0, 0], [0, 0, 2]])
    probability = predict_probability(lambda batch: blocks[batch], corners, (4, 6, 6), block_size=4,
                                      predictor=lambda batch: 4.0 * batch - 2.0, weighting="constant",
                                      levels=(0.0, 0.0, 255.0))  # tissue scaling by these levels = / 255
    sigmoid = lambda t: 1.0 / (1.0 + np.exp(-t))
    np.testing.assert_allclose(probability[:, :4, :2], sigmoid(-2.0), rtol=1e-6)
    np.testing.assert_allclose(probability[:, :4, 2:4], 0.5, rtol=1e-6)  # mean of the logits -2 and 2
    np.testing.assert_allclose(probability[:, :4, 4:], sigmoid(2.0), rtol=1e-6)
    assert np.all(probability[:, 4:] == 0.0)  # below the blocks: no prediction, probability 0


@pytest.mark.slow
def test_shipped_network_finds_the_phantoms_glands():
    from medimg.common.metrics import ConfusionCounts
    from medimg.oct_glands.denoise import denoise_volume
    from medimg.oct_glands.phantom import make_phantom
    from medimg.oct_glands.roi import roi_corners
    from medimg.oct_glands.surface import detect_surface
    from medimg.oct_glands.threshold import binarize

    phantom = make_phantom((80, 112, 120), seed=999)
    volume = denoise_volume(phantom.volume)
    corners = roi_corners(detect_surface(volume), volume.shape)
    probability = predict_probability(tile_reader(volume, corners, (80,) * 3), corners, volume.shape, block_size=80,
                                      predictor=oct_network(InferenceOptions(device="cpu")))
    mask, _ = binarize(probability)
    assert ConfusionCounts.from_masks(mask, phantom.glands > 0).dice > 0.7


def test_network_input_scales_by_tissue_levels_unless_the_weights_carry_a_divisor():
    blocks = np.array([[[[10, 30], [50, 90]]]], dtype=np.uint8)
    tissue = {"scaling": "tissue", "percentiles": [5.0, 50.0, 95.0]}
    np.testing.assert_allclose(network_input(blocks, tissue, (10.0, 30.0, 50.0)).ravel(), [-0.5, 0.0, 0.5, 1.5])
    with pytest.raises(InputError, match="expected the tissue levels of the scan"):
        network_input(blocks, tissue)
    # weights trained on /255 (their header has a divisor; the registry's defaults merge beneath it)
    old = {**tissue, "divisor": 255.0}
    np.testing.assert_allclose(network_input(blocks, old, (10.0, 30.0, 50.0)).ravel(), np.array([10, 30, 50, 90]) / 255.0, rtol=1e-6)


def test_without_levels_the_blocks_give_them():
    blocks = np.random.default_rng(0).integers(0, 255, (3, 4, 4, 4)).astype(np.uint8)
    seen = []
    predict_probability(lambda batch: blocks[batch], np.zeros((3, 3), int), (4, 4, 4), block_size=4,
                        predictor=lambda batch: seen.append(batch) or np.zeros_like(batch))
    from medimg.oct_glands.intensity import levels_of_blocks, scale_to_levels

    np.testing.assert_allclose(np.concatenate(seen)[:, 0], scale_to_levels(blocks, levels_of_blocks(blocks)), atol=1e-6)


def test_probability_window_holds_the_blocks_depths_as_floats_or_uint8_codes():
    from medimg.oct_glands.inference import predict_probability_window

    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, (8, 30, 10)).astype(np.uint8)
    corners = np.array([[0, 12, 0], [4, 6, 4], [0, 9, 2]])  # out of row order: the window sorts them
    arguments = dict(block_size=4, predictor=lambda batch: 6.0 * batch, weighting="gaussian", levels=(0.0, 128.0, 255.0))
    expected = predict_probability(tile_reader(volume, corners, (4, 4, 4)), corners, volume.shape, **arguments)
    floats = predict_probability_window(tile_reader(volume, corners, (4, 4, 4)), corners, volume.shape, **arguments)
    assert (floats.top, floats.bottom, floats.depth) == (6, 16, 30) and floats.data.dtype == np.float32
    np.testing.assert_array_equal(floats.to_array(), expected)
    assert expected[:, :6].max() == 0 and expected[:, 16:].max() == 0 and expected[:, 6:16].max() > 0.5
    codes = predict_probability_window(tile_reader(volume, corners, (4, 4, 4)), corners, volume.shape, storage="uint8", **arguments)
    assert codes.data.dtype == np.uint8 and codes.data.nbytes * 4 == floats.data.nbytes
    assert np.abs(codes.to_array() - expected).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(Exception, match="probability storage among float32, uint8"):
        predict_probability_window(tile_reader(volume, corners, (4, 4, 4)), corners, volume.shape, storage="float16", **arguments)
