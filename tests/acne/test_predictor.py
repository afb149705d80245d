import json

import numpy as np
import pytest

from medimg.acne.predictor import load_network, network_predictor
from medimg.common.errors import FormatError, ModelError
from medimg.common.weights import SHIPPED, save_weights

from .conftest import TINY_CONFIG


def test_weights_rebuild_the_network_they_were_trained_as(random_weights):
    from medimg.acne.models import build_model, model_config

    network, source = load_network("fusion", weights=random_weights)
    assert source == str(random_weights) and not network.training
    expected_config = model_config(build_model("fusion", **TINY_CONFIG))
    assert model_config(network) == expected_config
    assert sum(p.numel() for p in network.parameters()) == sum(p.numel() for p in build_model("fusion", **TINY_CONFIG).parameters())


def test_predictor_gives_distributions_and_batches_consistently(random_weights):
    import torch

    network, _ = load_network("fusion", weights=random_weights)
    images = np.random.default_rng(0).normal(size=(3, 3, 224, 224)).astype(np.float32)
    count_probs, grade_probs = network_predictor(network, torch.device("cpu"))(images)
    assert count_probs.shape == (3, 65) and grade_probs.shape == (3, 4)
    assert count_probs.dtype == grade_probs.dtype == np.float32
    np.testing.assert_allclose(count_probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(grade_probs.sum(axis=1), 1.0, atol=1e-5)
    assert (count_probs >= 0).all() and (grade_probs >= 0).all()
    one_by_one = network_predictor(network, torch.device("cpu"), batch_size=1)(images)
    np.testing.assert_allclose(one_by_one[0], count_probs, atol=1e-5)
    np.testing.assert_allclose(one_by_one[1], grade_probs, atol=1e-5)


def test_default_weights_exist_only_for_fusion():
    with pytest.raises(ModelError, match="expected --weights for model 'resnet'.*medimg acne train --model resnet"):
        load_network("resnet")
    if "acne-fusion" in SHIPPED:
        network, source = load_network("fusion")
        assert source == "shipped:acne-fusion" and not network.training
    else:
        with pytest.raises(ModelError, match="expected --weights for model 'fusion' .*not shipped"):
            load_network("fusion")


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ModelError, match="expected a model among resnet, vit, fusion, got 'bogus'"):
        load_network("bogus")


def test_weights_of_another_network_or_config_are_refused(tmp_path, random_weights):
    import torch

    from medimg.acne.models import build_model, model_config

    with pytest.raises(ModelError, match="expected weights for architecture 'acne-vit', got 'acne-fusion'"):
        load_network("vit", weights=random_weights)
    torch.manual_seed(0)
    resnet = build_model("resnet", widths=[4, 4], blocks=[1, 1])
    lying = save_weights(tmp_path / "lying.safetensors", resnet.state_dict(), arch="acne-resnet",
                         metadata={"model_config": json.dumps({**model_config(resnet), "widths": [8, 8]})})
    with pytest.raises(ModelError, match="of another shape"):
        load_network("resnet", weights=lying)
    broken = save_weights(tmp_path / "broken.safetensors", resnet.state_dict(), arch="acne-resnet", metadata={"model_config": "{not json"})
    with pytest.raises(FormatError, match="expected a JSON object in the weights metadata 'model_config'"):
        load_network("resnet", weights=broken)
