"""The predictor contract: network_predictor, LazyModel, model_io."""

import numpy as np
import pytest
import torch

import medimg.common.models as models
from medimg.common.errors import InputError, ModelError
from medimg.common.models import build_network, network_spec, weights_metadata
from medimg.common.predictor import LazyModel, model_io, network_predictor
from medimg.common.weights import save_weights

CPU = torch.device("cpu")


class Affine(torch.nn.Module):
    """logits = 2 x + 1 per voxel, plus a channel holding the item's mean (depends on the item only)."""

    def forward(self, x):
        mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True).expand_as(x)
        return torch.cat([2 * x + 1, mean], dim=1)


class TwoHeads(torch.nn.Module):
    def forward(self, x):
        flat = x.flatten(1)
        return flat.sum(dim=1, keepdim=True), torch.stack([flat.min(dim=1).values, flat.max(dim=1).values], dim=1)


@pytest.fixture
def tiny_weights(tmp_path):
    net = build_network("oct-light", {"channels": [4, 8]})
    metadata = weights_metadata("oct-light", net, preprocessing={"divisor": 100.0}, output={"activation": "identity"})
    return save_weights(tmp_path / "tiny.safetensors", net.state_dict(), arch="oct-light", metadata=metadata)


def test_network_predictor_gives_the_same_logits_batched_by_one_and_at_once():
    batch = np.arange(3 * 1 * 2 * 2, dtype=np.float32).reshape(3, 1, 2, 2)
    one = network_predictor(Affine(), CPU, batch_size=1)(batch)
    two = network_predictor(Affine(), CPU, batch_size=2)(batch)
    whole = network_predictor(Affine(), CPU)(batch)
    assert whole.dtype == np.float32 and whole.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(whole[:, 0], 2 * batch[:, 0] + 1)
    np.testing.assert_allclose(whole[:, 1, 0, 0], [1.5, 5.5, 9.5])
    np.testing.assert_array_equal(one, whole)
    np.testing.assert_array_equal(two, whole)


def test_network_predictor_accepts_read_only_and_float64_inputs():
    batch = np.ones((2, 1, 3), dtype=np.float64)
    batch.setflags(write=False)
    out = network_predictor(Affine(), CPU, batch_size=1)(batch)
    np.testing.assert_array_equal(out[:, 0], np.full((2, 3), 3.0, dtype=np.float32))


def test_network_predictor_puts_the_network_in_eval_mode():
    net = torch.nn.Sequential(torch.nn.Dropout(0.5))
    net.train()
    predict = network_predictor(net, CPU)
    batch = np.ones((2, 1, 50), dtype=np.float32)
    np.testing.assert_array_equal(predict(batch), batch)
    assert not net.training


def test_two_heads_are_concatenated_per_head():
    batch = np.arange(3 * 1 * 4, dtype=np.float32).reshape(3, 1, 4)
    heads = network_predictor(TwoHeads(), CPU, batch_size=2)(batch)
    assert isinstance(heads, tuple) and len(heads) == 2
    np.testing.assert_array_equal(heads[0], [[6.0], [22.0], [38.0]])
    np.testing.assert_array_equal(heads[1], [[0.0, 3.0], [4.0, 7.0], [8.0, 11.0]])
    at_once = network_predictor(TwoHeads(), CPU)(batch)
    for a, b in zip(heads, at_once):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(0, 1, 4), (4,)])
def test_empty_or_flat_batch_is_an_input_error(shape):
    with pytest.raises(InputError, match="non-empty batch"):
        network_predictor(Affine(), CPU)(np.zeros(shape, dtype=np.float32))


def test_batch_size_below_one_is_an_input_error():
    with pytest.raises(InputError, match="batch size"):
        network_predictor(Affine(), CPU, batch_size=0)


def test_lazy_model_loads_on_first_call_and_only_once(tiny_weights, monkeypatch):
    calls = []
    real = models.load_model

    def counting(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    lazy = LazyModel(arch="oct-light", weights=tiny_weights, device="cpu", batch_size=1)
    assert lazy.source == "not loaded"
    assert lazy.device == "n/a"
    assert calls == []
    batch = np.random.default_rng(0).random((2, 1, 8, 8, 8), dtype=np.float32)
    first = lazy(batch)
    assert first.shape == (2, 1, 8, 8, 8)
    assert lazy.source == str(tiny_weights)
    assert lazy.device == "cpu"
    second = lazy(batch)
    np.testing.assert_array_equal(first, second)
    assert lazy.model is lazy.load()
    assert len(calls) == 1


def test_lazy_model_matches_the_network_it_wraps(tiny_weights):
    lazy = LazyModel(weights=tiny_weights, device="cpu")
    batch = np.random.default_rng(1).random((1, 1, 8, 8, 8), dtype=np.float32)
    logits = lazy(batch)
    with torch.inference_mode():
        expected = lazy.model.network(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


def test_lazy_model_with_an_unknown_arch_fails_at_construction():
    with pytest.raises(ModelError, match="oct-light, oct-standard"):
        LazyModel(arch="oct-bogus")


def test_lazy_model_with_a_missing_file_fails_only_when_used(tmp_path):
    lazy = LazyModel(arch="oct-light", weights=tmp_path / "missing.safetensors", device="cpu")
    assert lazy.source == "not loaded"
    with pytest.raises(ModelError, match="does not exist"):
        lazy(np.zeros((1, 1, 8, 8, 8), dtype=np.float32))


def test_model_io_of_a_plain_callable_is_the_registry_default():
    preprocessing, output = model_io(lambda batch: batch, "oct-light")
    spec = network_spec("oct-light")
    assert preprocessing == spec.preprocessing == {"intensity": "uint8", "scaling": "tissue", "percentiles": [5.0, 50.0, 95.0],
                                                   "tissue_depth": 80}
    assert output == spec.output == {"activation": "sigmoid", "channels": ["gland"]}
    assert model_io(lambda batch: batch, "acne-vit")[1] == network_spec("acne-vit").output


def test_model_io_of_a_lazy_model_is_the_files(tiny_weights):
    lazy = LazyModel(weights=tiny_weights, device="cpu")
    preprocessing, output = model_io(lazy, "oct-standard")
    assert preprocessing["divisor"] == 100.0 and preprocessing["intensity"] == "uint8"  # the file's entries win
    assert output == {"activation": "identity"}
    assert lazy.source == str(tiny_weights)
