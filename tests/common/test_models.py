"""The network registry and the weights header: every weights file rebuilds its network alone."""

import json

import pytest

from medimg.common.errors import ModelError
from medimg.common.models import (
    build_network,
    load_model,
    network_spec,
    registered,
    weights_header,
    weights_metadata,
)
from medimg.common.weights import SHIPPED, save_weights

OCT_ARCHS = ["oct-light", "oct-standard"]
ALL_ARCHS = sorted([
    *OCT_ARCHS,
    "acne-resnet", "acne-vit", "acne-fusion", "acne-lesion",
    "mandible-unet", "mandible-res-unet", "mandible-cbam-unet", "mandible-res-cbam-unet",
])


def _tiny_oct_file(path, *, arch="oct-light", preprocessing=None, output=None):
    net = build_network(arch, {"channels": [4, 8]})
    metadata = weights_metadata(arch, net, preprocessing=preprocessing, output=output)
    return save_weights(path, net.state_dict(), arch=arch, metadata=metadata), net


def test_registered_lists_every_arch_and_filters_by_group():
    assert registered() == ALL_ARCHS
    assert registered("oct") == OCT_ARCHS
    assert registered("acne") == ["acne-fusion", "acne-lesion", "acne-resnet", "acne-vit"]
    assert registered("nope") == []


def test_unknown_arch_lists_the_valid_names_of_its_group():
    with pytest.raises(ModelError, match="oct-light, oct-standard") as info:
        network_spec("oct-bogus")
    assert "acne" not in str(info.value)
    assert "'oct-bogus'" in str(info.value)


def test_unknown_group_lists_every_arch():
    with pytest.raises(ModelError, match="acne-fusion.*oct-standard"):
        network_spec("bogus")


def test_spec_group_is_the_name_prefix():
    assert network_spec("mandible-res-cbam-unet").group == "mandible"
    assert network_spec("acne-vit").group == "acne"


def test_build_network_with_a_foreign_keyword_is_a_model_error():
    with pytest.raises(ModelError):
        build_network("mandible-unet", {"no_such_option": 1})


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_weights_load_alone(name):
    arch = SHIPPED[name].arch
    model = load_model(arch=arch)
    assert model.arch == arch
    assert model.source == f"shipped:{name}"
    assert model.network.training is False
    assert all(not module.training for module in model.network.modules())
    spec = network_spec(arch)
    assert set(spec.preprocessing) <= set(model.preprocessing)
    # a file may add its own answer settings (the lesion detector's threshold) to the registered output
    assert {key: model.output[key] for key in spec.output} == spec.output
    assert model.output  # "activation" or "heads"


def test_shipped_legacy_files_read_their_top_level_input_settings():
    mandible = load_model(arch="mandible-res-cbam-unet")
    assert mandible.preprocessing["window_level"] == 400.0
    assert mandible.preprocessing["window_width"] == 2000.0
    assert mandible.preprocessing["input_size"] == 256
    assert mandible.config["width"] == 0.125
    acne = load_model(arch="acne-fusion")
    assert acne.preprocessing["input_size"] == 224
    assert [head["name"] for head in acne.output["heads"]] == ["count", "grade"]


def test_saved_header_round_trips(tmp_path):
    path, net = _tiny_oct_file(tmp_path / "w.safetensors", preprocessing={"divisor": 100.0})
    model = load_model(path, arch="oct-light")
    assert model.arch == "oct-light"
    assert model.config == {"channels": [4, 8], "in_channels": 1}
    assert model.preprocessing == {"intensity": "uint8", "scaling": "tissue", "percentiles": [5.0, 50.0, 95.0], "tissue_depth": 80,
                                   "divisor": 100.0}  # the registry's defaults under the file's own entry
    assert model.output == {"activation": "sigmoid", "channels": ["gland"]}
    assert model.source == str(path)
    assert model.metadata["format"] == "medimg-weights-2"
    assert json.loads(model.metadata["config"]) == {"channels": [4, 8], "in_channels": 1}
    for key, value in net.state_dict().items():
        assert (model.network.state_dict()[key] == value).all()


def test_saved_header_without_arch_or_group_takes_whatever_the_file_holds(tmp_path):
    path, _ = _tiny_oct_file(tmp_path / "w.safetensors", output={"activation": "identity"})
    model = load_model(path)
    assert model.arch == "oct-light"
    assert model.output == {"activation": "identity"}
    assert load_model(path, group="oct").arch == "oct-light"


def test_mandible_header_round_trips(tmp_path):
    net = build_network("mandible-unet", {"width": 0.0625})
    metadata = weights_metadata("mandible-unet", net, preprocessing={"input_size": 128})
    path = save_weights(tmp_path / "m.safetensors", net.state_dict(), arch="mandible-unet", metadata=metadata)
    model = load_model(path, arch="mandible-unet")
    assert model.config["width"] == 0.0625
    assert model.preprocessing["input_size"] == 128
    assert model.preprocessing["window_width"] == network_spec("mandible-unet").preprocessing["window_width"]


def test_legacy_file_with_model_config_and_top_level_entries(tmp_path):
    net = build_network("mandible-unet", {"width": 0.0625})
    config = {"width": 0.0625, "cbam_reduction": 16, "cbam_kernel": 7, "in_channels": 3}
    legacy = {"model_config": json.dumps({**config, "arch": "unet"}), "input_size": "128", "window_level": "50.0", "epochs": "3"}
    path = save_weights(tmp_path / "old.safetensors", net.state_dict(), arch="mandible-unet", metadata=legacy)
    model = load_model(path, arch="mandible-unet")
    assert model.config == config  # the stray "arch" of old model_config entries is dropped
    assert model.preprocessing["input_size"] == 128
    assert model.preprocessing["window_level"] == 50.0
    defaults = network_spec("mandible-unet").preprocessing
    assert model.preprocessing["window_width"] == defaults["window_width"]
    assert "epochs" not in model.preprocessing
    assert model.output == network_spec("mandible-unet").output


def test_legacy_header_keeps_a_non_json_top_level_value_as_text():
    header = weights_header({"arch": "acne-resnet", "resize": "nearest"}, source="x")
    assert header.preprocessing["resize"] == "nearest"
    assert header.config == {}


def test_file_of_another_arch_is_refused(tmp_path):
    path, _ = _tiny_oct_file(tmp_path / "w.safetensors")
    with pytest.raises(ModelError, match="oct-standard.*'oct-light'"):
        load_model(path, arch="oct-standard")


def test_unknown_arch_with_a_file_is_told_as_unknown(tmp_path):
    path, _ = _tiny_oct_file(tmp_path / "w.safetensors")
    with pytest.raises(ModelError, match="oct-light, oct-standard"):
        load_model(path, arch="oct-bogus")


def test_group_refuses_a_file_of_another_group(tmp_path):
    path, _ = _tiny_oct_file(tmp_path / "w.safetensors")
    with pytest.raises(ModelError, match="acne weights") as info:
        load_model(path, group="acne")
    assert "'oct-light'" in str(info.value)


@pytest.mark.parametrize("bad", ["{not json", "[4, 8]", "3"])
def test_bad_config_entry_is_a_model_error(tmp_path, bad):
    net = build_network("oct-light", {"channels": [4, 8]})
    metadata = {**weights_metadata("oct-light", net), "config": bad}
    path = save_weights(tmp_path / "w.safetensors", net.state_dict(), arch="oct-light", metadata=metadata)
    with pytest.raises(ModelError, match="'config'"):  # a bad weights file fails every input alike: a model error
        load_model(path, arch="oct-light")


def test_file_without_arch_is_a_model_error():
    with pytest.raises(ModelError, match="'arch'"):
        weights_header({"config": "{}"}, source="x.safetensors")


def test_arch_without_shipped_weights_names_the_ones_that_ship():
    with pytest.raises(ModelError, match="weights ship for oct-light") as info:
        load_model(arch="oct-standard")
    assert "medimg oct train" in str(info.value)
    with pytest.raises(ModelError, match="weights ship for mandible-res-cbam-unet"):
        load_model(arch="mandible-unet")


def test_neither_arch_nor_weights_is_a_model_error():
    with pytest.raises(ModelError, match="neither"):
        load_model()


def test_weights_of_another_shape_are_refused(tmp_path):
    net = build_network("oct-light", {"channels": [4, 8]})
    metadata = {**weights_metadata("oct-light", net), "config": json.dumps({"channels": [4, 16]})}
    path = save_weights(tmp_path / "w.safetensors", net.state_dict(), arch="oct-light", metadata=metadata)
    with pytest.raises(ModelError, match="another shape"):
        load_model(path)
