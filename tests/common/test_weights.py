import pytest
import torch

from medimg.common.errors import FormatError, ModelError
from medimg.common.weights import ShippedWeights, load_state_into, load_weights, save_weights, sha256_of, shipped_weights


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.BatchNorm1d(2))


def test_safetensors_round_trip_preserves_every_tensor(tmp_path):
    net = _net()
    path = save_weights(tmp_path / "w.safetensors", net.state_dict(), arch="toy", metadata={"epochs": 3})
    tensors, metadata = load_weights(path, arch="toy")
    assert metadata["arch"] == "toy" and metadata["epochs"] == "3"
    for key, value in net.state_dict().items():
        torch.testing.assert_close(tensors[key], value, rtol=0, atol=0)
    fresh = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.BatchNorm1d(2))
    load_state_into(fresh, tensors, source="w")
    torch.testing.assert_close(fresh[0].weight, net[0].weight, rtol=0, atol=0)


def test_wrong_architecture_is_refused(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", _net().state_dict(), arch="toy")
    with pytest.raises(ModelError, match="expected weights for architecture 'oct-light', got 'toy'"):
        load_weights(path, arch="oct-light")


def test_mismatched_layers_are_one_clear_error(tmp_path):
    tensors = dict(_net().state_dict())
    tensors["0.weight"] = torch.zeros(5, 1, 3)
    with pytest.raises(ModelError, match=r"1 of another shape \(e.g. 0.weight: \(5, 1, 3\) vs \(2, 1, 3\)\)"):
        load_state_into(_net(), tensors, source="w")


def test_a_pickle_is_not_loaded(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(FormatError, match="expected a safetensors weights file"):
        load_weights(path)


def test_shipped_weights_are_checked_by_sha256(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", _net().state_dict(), arch="toy")
    good = {"toy": ShippedWeights("toy", path.name, sha256_of(path), "toy", "card.md")}
    assert shipped_weights("toy", registry=good, directory=tmp_path) == path
    bad = {"toy": ShippedWeights("toy", path.name, "0" * 64, "toy", "card.md")}
    with pytest.raises(ModelError, match="expected SHA-256 0000000000000000"):
        shipped_weights("toy", registry=bad, directory=tmp_path)
    with pytest.raises(ModelError, match="expected shipped weights among toy, got 'other'"):
        shipped_weights("other", registry=good, directory=tmp_path)
