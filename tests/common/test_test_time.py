"""Test-time augmentation: logits averaged over symmetric copies, mapped back."""

import numpy as np
import pytest

from medimg.common.errors import OptionValueError
from medimg.common.test_time import en_face_symmetries, symmetry_averaged


def counting(predictor):
    calls = []

    def predict(batch):
        calls.append(batch.copy())
        return predictor(batch)

    return predict, calls


def test_a_position_dependent_predictor_is_averaged_with_its_mirror():
    # logits = input * x: the mirror copy sees x reversed, so the average weighs every column by (W - 1) / 2
    ramp = np.arange(5, dtype=np.float32)
    batch = np.random.default_rng(0).random((2, 1, 3, 5)).astype(np.float32)
    predict, calls = counting(lambda b: b * ramp)
    averaged = symmetry_averaged(predict, flip_axes=(-1,))(batch)
    np.testing.assert_allclose(averaged, batch * 2.0, rtol=1e-6)
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[1], batch[..., ::-1])


def test_an_equivariant_predictor_is_unchanged_by_every_symmetry():
    batch = np.random.default_rng(1).random((2, 1, 4, 3, 4)).astype(np.float32)
    for augmentation, passes in (("none", 1), ("flips", 4), ("dihedral", 8)):
        predict, calls = counting(lambda b: 3 * b - 1)
        np.testing.assert_allclose(en_face_symmetries(predict, augmentation)(batch), 3 * batch - 1, rtol=1e-6)
        assert len(calls) == passes


def test_dihedral_copies_are_mapped_back_through_the_swap():
    # logits = input * y-index: swapped copies weigh by x-index instead; 8 copies average y and x ramps
    batch = np.ones((1, 1, 4, 2, 4), dtype=np.float32)
    y_ramp = np.arange(4, dtype=np.float32)[:, None, None]
    averaged = en_face_symmetries(lambda b: b * y_ramp, "dihedral")(batch)
    # flips of y turn y into 3 - y, so each copy's y weight averages to 1.5, whatever was swapped
    np.testing.assert_allclose(averaged, np.full_like(batch, 1.5), rtol=1e-6)


def test_per_item_outputs_are_averaged_as_they_are_and_tuples_kept():
    batch = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 4)  # rows 0 1 2 3 / 4 5 6 7
    first_column = lambda b: (b[:, :, :, 0].sum(axis=-1), b)  # (B, 1) per item, and a spatial map
    scores, spatial = symmetry_averaged(first_column, flip_axes=(-1,))(batch)
    np.testing.assert_allclose(scores, [[(0 + 4 + 3 + 7) / 2]])
    np.testing.assert_allclose(spatial, batch)


def test_bad_requests_are_refused():
    with pytest.raises(OptionValueError, match="none, flips, dihedral"):
        en_face_symmetries(lambda b: b, "rotations")
    with pytest.raises(OptionValueError, match="equal size"):
        en_face_symmetries(lambda b: b, "dihedral")(np.zeros((1, 1, 4, 2, 3), dtype=np.float32))
