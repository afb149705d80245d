import json

import numpy as np
import pytest

from medimg.acne.inference import InferenceOptions, acne_network, input_preprocessing, network_input, predict_probabilities
from medimg.common.errors import ModelError
from medimg.common.weights import save_weights

from .conftest import TINY_CONFIG


def network_of(weights):
    return acne_network(InferenceOptions(weights=weights, device="cpu"))


def test_weights_rebuild_the_network_they_were_trained_as(random_weights):
    from medimg.acne.models import build_model, model_config

    network = network_of(random_weights)
    model = network.load()
    assert network.source == str(random_weights) and not model.network.training
    assert model_config(model.network) == model_config(build_model("fusion", **TINY_CONFIG))
    assert model.preprocessing["input_size"] == 224 and [h["name"] for h in model.output["heads"]] == ["count", "grade"]


def test_the_network_gives_logits_and_the_pipeline_distributions(random_weights):
    network = network_of(random_weights)
    images = np.random.default_rng(0).normal(size=(3, 3, 224, 224)).astype(np.float32)
    count_logits, grade_logits = network(images)
    count_probs, grade_probs = predict_probabilities(images, network)
    assert count_probs.shape == (3, 65) and grade_probs.shape == (3, 4)
    assert count_probs.dtype == grade_probs.dtype == np.float32
    np.testing.assert_allclose(count_probs.sum(axis=1), 1.0, atol=1e-5)
    shifted = np.exp(grade_logits - grade_logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(grade_probs, shifted / shifted.sum(axis=1, keepdims=True), atol=1e-6)
    by_one = acne_network(InferenceOptions(weights=network.weights, device="cpu", batch_size=1))(images)
    np.testing.assert_allclose(by_one[0], count_logits, atol=1e-4)


def test_network_input_resizes_to_the_weights_input_size():
    photo = np.full((30, 50, 3), 128, np.uint8)
    image = network_input(photo, {"input_size": 64})
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert input_preprocessing(lambda x: x)["input_size"] == 224  # a plain callable gets the fusion defaults
    # the weights' own statistics are applied: mean 0.5, std 0.25 maps grey 128 to (128/255 - 0.5) / 0.25
    image = network_input(photo, {"input_size": 8, "mean": [0.5] * 3, "std": [0.25] * 3})
    np.testing.assert_allclose(image, (128 / 255 - 0.5) / 0.25, rtol=1e-5)


def test_default_weights_ship_for_lesion_and_fusion_only():
    with pytest.raises(ModelError, match="expected --weights for 'acne-resnet' \\(weights ship for acne-fusion, acne-lesion; train them with 'medimg acne train'\\)"):
        acne_network(InferenceOptions(model="resnet")).load()
    network = acne_network(InferenceOptions(device="cpu"))
    assert network.load().arch == "acne-lesion" and network.source == "shipped:acne-lesion"
    fusion = acne_network(InferenceOptions(model="fusion", device="cpu"))
    assert fusion.load().arch == "acne-fusion" and fusion.source == "shipped:acne-fusion"


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ModelError, match="expected a model among fusion, lesion, resnet, vit, got 'bogus'"):
        acne_network(InferenceOptions(model="bogus"))


def test_weights_of_another_network_or_config_are_refused(tmp_path, random_weights):
    import torch

    from medimg.acne.models import build_model, model_config

    with pytest.raises(ModelError, match="expected weights for architecture 'acne-vit', got 'acne-fusion'"):
        acne_network(InferenceOptions(model="vit", weights=random_weights)).load()
    torch.manual_seed(0)
    resnet = build_model("resnet", widths=[4, 4], blocks=[1, 1])
    lying = save_weights(tmp_path / "lying.safetensors", resnet.state_dict(), arch="acne-resnet",
                         metadata={"config": json.dumps({**model_config(resnet), "widths": [8, 8]})})
    with pytest.raises(ModelError, match="of another shape"):
        acne_network(InferenceOptions(model="resnet", weights=lying)).load()
    broken = save_weights(tmp_path / "broken.safetensors", resnet.state_dict(), arch="acne-resnet", metadata={"config": "{not json"})
    with pytest.raises(ModelError, match="expected a JSON object under 'config' in the weights metadata"):
        acne_network(InferenceOptions(model="resnet", weights=broken)).load()
