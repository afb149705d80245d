"""Logits -> probabilities as the weights header's ``output`` entry says."""

import math

import numpy as np
import pytest

from medimg.common.activation import activate
from medimg.common.errors import ModelError


def test_sigmoid_on_hand_worked_logits():
    logits = np.array([[0.0, math.log(3.0), -math.log(3.0)]], dtype=np.float32)
    probabilities = activate(logits, {"activation": "sigmoid"})
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, [[0.5, 0.75, 0.25]], rtol=1e-6)


def test_sigmoid_is_the_default_activation():
    np.testing.assert_allclose(activate(np.zeros((1, 1, 2)), {}), np.full((1, 1, 2), 0.5))


def test_sigmoid_of_infinite_logits_is_exactly_zero_and_one():
    probabilities = activate(np.array([[-np.inf, np.inf]], dtype=np.float32), {"activation": "sigmoid"})
    assert probabilities.tolist() == [[0.0, 1.0]]
    assert not np.isnan(probabilities).any()


def test_softmax_is_over_the_channel_axis():
    logits = np.zeros((2, 2, 3), dtype=np.float32)
    logits[:, 1] = math.log(3.0)  # per voxel: [0, ln 3] -> [1/4, 3/4]
    logits[1, :, 2] = [5.0, 5.0]  # equal logits -> [1/2, 1/2]
    probabilities = activate(logits, {"activation": "softmax"})
    assert probabilities.shape == (2, 2, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities[0, :, 0], [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(probabilities[1, :, 2], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_identity_returns_the_logits_as_float32():
    logits = np.array([[-2.5, 0.0, 7.0]])
    out = activate(logits, {"activation": "identity"})
    assert out.dtype == np.float32
    assert out.tolist() == [[-2.5, 0.0, 7.0]]


def test_heads_are_activated_one_by_one():
    output = {"heads": [
        {"name": "count", "activation": "softmax"},
        {"name": "grade", "activation": "sigmoid"},
        {"name": "raw"},  # no activation: identity
    ]}
    logits = (np.array([[0.0, math.log(3.0)]]), np.array([[0.0]]), np.array([[-4.0]]))
    count, grade, raw = activate(logits, output)
    np.testing.assert_allclose(count, [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(grade, [[0.5]])
    assert raw.tolist() == [[-4.0]]


def test_heads_accept_a_list_of_arrays():
    out = activate([np.zeros((1, 1)), np.zeros((1, 1))], {"heads": [{"name": "a", "activation": "sigmoid"}, {"name": "b"}]})
    assert isinstance(out, tuple) and out[0].tolist() == [[0.5]] and out[1].tolist() == [[0.0]]


def test_wrong_number_of_heads_is_a_model_error():
    output = {"heads": [{"name": "count", "activation": "softmax"}, {"name": "grade", "activation": "softmax"}]}
    with pytest.raises(ModelError, match="2 network outputs .count, grade., got 1 outputs"):
        activate((np.zeros((1, 2)),), output)
    with pytest.raises(ModelError, match="got one array"):
        activate(np.zeros((1, 2)), output)


def test_unknown_activation_is_a_model_error():
    with pytest.raises(ModelError, match="sigmoid, softmax, identity.*'relu'"):
        activate(np.zeros((1, 1)), {"activation": "relu"})
    with pytest.raises(ModelError, match="'tanh'"):
        activate((np.zeros((1, 1)),), {"heads": [{"name": "a", "activation": "tanh"}]})
