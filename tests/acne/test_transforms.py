import numpy as np
import pytest

from medimg.acne import transforms
from medimg.acne.transforms import ACNE04_MEAN, ACNE04_STD, INPUT_SIZE, normalize, train_transform
from medimg.common.errors import InputError

COLOUR = (128, 64, 255)


def hand_normalised(rgb) -> list[float]:
    return [(rgb[0] / 255 - 0.45815152) / 0.2814769, (rgb[1] / 255 - 0.361242) / 0.226306, (rgb[2] / 255 - 0.29348266) / 0.20132513]


def constant_image(shape=(300, 200), rgb=COLOUR) -> np.ndarray:
    image = np.empty((*shape, 3), np.uint8)
    image[...] = rgb
    return image


def position_image(size: int) -> np.ndarray:
    """Red = column, green = row: every pixel tells where it came from."""
    rows, columns = np.mgrid[0:size, 0:size]
    return np.stack([columns, rows, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def draws(seed: int, *, span: int, max_rotation: float):
    """The documented draw order of train_transform: crop top, crop left, flip, angle."""
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, span + 1))
    left = int(rng.integers(0, span + 1))
    flip = bool(rng.random() < 0.5)
    angle = float(rng.uniform(-max_rotation, max_rotation))
    return top, left, flip, angle


def test_constants():
    assert INPUT_SIZE == 224
    assert ACNE04_MEAN == (0.45815152, 0.361242, 0.29348266)
    assert ACNE04_STD == (0.2814769, 0.226306, 0.20132513)


def test_test_transform_shape_and_values_on_a_constant_image():
    tensor = transforms.test_transform(constant_image())
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    expected = hand_normalised(COLOUR)  # 128/255 -> (0.50196 - 0.45815) / 0.28148 = 0.15565 ...
    assert expected[0] == pytest.approx(0.155650, abs=1e-5)
    for channel in range(3):
        np.testing.assert_allclose(tensor[channel], expected[channel], rtol=1e-6)
    assert transforms.test_transform(constant_image(), size=32).shape == (3, 32, 32)


def test_normalize_black_and_white():
    tensor = normalize(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8))
    assert tensor.shape == (3, 1, 2)
    np.testing.assert_allclose(tensor[:, 0, 0], [-m / s for m, s in zip(ACNE04_MEAN, ACNE04_STD)], rtol=1e-6)
    np.testing.assert_allclose(tensor[:, 0, 1], [(1 - m) / s for m, s in zip(ACNE04_MEAN, ACNE04_STD)], rtol=1e-6)


def test_test_transform_is_not_collected_as_a_test():
    assert transforms.test_transform.__test__ is False


def test_train_transform_shape_and_constant_centre():
    tensor = train_transform(constant_image(), rng=np.random.default_rng(0))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    # rotation by at most 20 degrees only blackens corners; the centre keeps the colour
    np.testing.assert_allclose(tensor[:, 100:124, 100:124], np.broadcast_to(np.array(hand_normalised(COLOUR))[:, None, None], (3, 24, 24)), rtol=1e-5)


def test_train_transform_is_deterministic_for_a_seed():
    image = np.random.default_rng(5).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    first = train_transform(image, rng=np.random.default_rng(42))
    second = train_transform(image, rng=np.random.default_rng(42))
    other = train_transform(image, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_crop_and_flip_follow_the_draws():
    image = position_image(256)  # already 256 x 256: the resize leaves it unchanged
    seen_flips = set()
    for seed in range(12):
        top, left, flip, _ = draws(seed, span=32, max_rotation=0.0)
        tensor = train_transform(image, rng=np.random.default_rng(seed), max_rotation=0.0)
        crop = image[top : top + 224, left : left + 224]
        expected = normalize(crop[:, ::-1] if flip else crop)
        np.testing.assert_array_equal(tensor, expected)
        seen_flips.add(flip)
    assert seen_flips == {True, False}  # some seeds flip, some do not


def test_flip_actually_happens():
    image = position_image(224)
    outputs = [train_transform(image, rng=np.random.default_rng(seed), size=224, resize=224, max_rotation=0.0) for seed in range(10)]
    flipped = [bool(np.array_equal(out, normalize(image[:, ::-1]))) for out in outputs]
    plain = [bool(np.array_equal(out, normalize(image))) for out in outputs]
    assert any(flipped) and any(plain)
    assert all(f != p for f, p in zip(flipped, plain))


def test_rotation_blackens_corners_by_the_drawn_angle():
    seed = next(s for s in range(50) if abs(draws(s, span=32, max_rotation=20.0)[3]) > 10)
    tensor = train_transform(constant_image((256, 256), (255, 255, 255)), rng=np.random.default_rng(seed))
    black = np.array(hand_normalised((0, 0, 0)))
    white = np.array(hand_normalised((255, 255, 255)))
    np.testing.assert_allclose(tensor[:, 0, 0], black, rtol=1e-5)
    np.testing.assert_allclose(tensor[:, 223, 223], black, rtol=1e-5)
    np.testing.assert_allclose(tensor[:, 112, 112], white, rtol=1e-5)
    unrotated = train_transform(constant_image((256, 256), (255, 255, 255)), rng=np.random.default_rng(seed), max_rotation=0.0)
    np.testing.assert_allclose(unrotated[:, 0, 0], white, rtol=1e-5)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8 RGB image, got float32"),
        (np.zeros((10, 10), np.uint8), r"got uint8 array of shape \(10, 10\)"),
        (np.zeros((10, 10, 4), np.uint8), r"shape \(10, 10, 4\)"),
        (np.zeros((0, 10, 3), np.uint8), "non-empty image"),
    ],
)
def test_bad_images_are_refused(image, message):
    with pytest.raises(InputError, match=message):
        transforms.test_transform(image)
    with pytest.raises(InputError, match=message):
        train_transform(image, rng=np.random.default_rng(0))


def test_bad_sizes_are_refused():
    with pytest.raises(InputError, match="resize >= the crop size 224"):
        train_transform(constant_image(), rng=np.random.default_rng(0), resize=200)
    with pytest.raises(InputError, match="size >= 1"):
        transforms.test_transform(constant_image(), size=0)
    with pytest.raises(InputError, match="maximum rotation"):
        train_transform(constant_image(), rng=np.random.default_rng(0), max_rotation=-5)
