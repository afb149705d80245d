import json

import numpy as np
import pytest
from PIL import Image

from medimg.common.errors import FormatError, InputError
from medimg.mandible.masks import read_case_mask, read_labelme_mask, read_nifti_mask, read_png_mask, read_slice_masks


def labelme(path, shapes, *, height=6, width=8):
    document = {"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": "x.png", "imageData": None,
                "imageHeight": height, "imageWidth": width}
    path.write_text(json.dumps(document))
    return path


def polygon(label, points, shape_type="polygon"):
    return {"label": label, "points": points, "group_id": None, "shape_type": shape_type, "flags": {}}


def test_labelme_polygons_labelled_mandible_are_filled(tmp_path):
    # A triangle with half-pixel corners (x, y): pixel centres strictly inside are, row by row,
    # y=1: x 1..5 (edge at x = 5.75), y=2: x 1..4 (4.25), y=3: x 1..2 (2.75), y=4: x 1 (1.25).
    triangle = polygon("Mandible", [[0.5, 0.5], [6.5, 0.5], [0.5, 4.5]])
    square = polygon("mandible", [[6, 3], [7, 3], [7, 5], [6, 5]])  # integer corners: the edge pixels count
    other = polygon("maxilla", [[0, 0], [7, 0], [7, 5], [0, 5]])
    path = labelme(tmp_path / "a.json", [triangle, other, square])
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 1, 1],
        [0, 1, 0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 1, 1],
    ], dtype=bool)
    mask = read_labelme_mask(path, shape=(6, 8))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)


def test_labelme_without_mandible_is_an_empty_mask_and_bad_files_are_refused(tmp_path):
    empty = read_labelme_mask(labelme(tmp_path / "e.json", [polygon("teeth", [[0, 0], [3, 0], [3, 3]])]))
    assert empty.shape == (6, 8) and not empty.any()
    with pytest.raises(InputError, match=r"expected a mask of shape \(6, 9\) \(the image's\), got \(6, 8\) in 'e.json'"):
        read_labelme_mask(tmp_path / "e.json", shape=(6, 9))
    labelme(tmp_path / "r.json", [polygon("mandible", [[0, 0], [3, 3]], shape_type="rectangle")])
    with pytest.raises(FormatError, match="expected polygon shapes for label 'mandible', got a 'rectangle'"):
        read_labelme_mask(tmp_path / "r.json")
    (tmp_path / "n.json").write_text(json.dumps({"shapes": []}))
    with pytest.raises(FormatError, match="expected imageHeight and imageWidth"):
        read_labelme_mask(tmp_path / "n.json")
    (tmp_path / "j.json").write_text("{not json")
    with pytest.raises(FormatError, match="expected a Labelme JSON file"):
        read_labelme_mask(tmp_path / "j.json")


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "RGBA"])
def test_png_masks_nonzero_is_mandible(tmp_path, mode):
    truth = np.zeros((5, 7), bool)
    truth[1:3, 2:6] = True
    if mode == "P":
        image = Image.fromarray(truth.astype(np.uint8), mode="L").convert("P")  # palette index 1 = label
        image.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    elif mode == "L":
        image = Image.fromarray(truth.astype(np.uint8) * 255)
    else:
        rgb = np.zeros((5, 7, len(mode)), np.uint8)
        rgb[truth, 0] = 200
        if mode == "RGBA":
            rgb[..., 3] = 255  # opaque everywhere: alpha must not count as label
        image = Image.fromarray(rgb, mode=mode)
    image.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_png_mask(tmp_path / "m.png", shape=(5, 7)), truth)


def test_slice_masks_mix_png_and_labelme_and_leave_unlabelled_slices_out(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((6, 8), 255, np.uint8)).save(masks / "s0.png")
    labelme(masks / "s2.json", [polygon("mandible", [[1, 1], [2, 1], [2, 2], [1, 2]])])
    stack, labelled = read_slice_masks(masks, ["s0", "s1", "s2"], shape=(6, 8))
    assert stack.shape == (3, 6, 8)
    assert labelled.tolist() == [True, False, True]
    assert [int(stack[k].sum()) for k in range(3)] == [48, 0, 4]
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(masks / "stray.png")
    with pytest.raises(InputError, match="1 without a slice \\(e.g. 'stray.png'\\)"):
        read_slice_masks(masks, ["s0", "s1", "s2"], shape=(6, 8))
    (masks / "stray.png").unlink()
    labelme(masks / "s0.json", [])
    with pytest.raises(FormatError, match="both s0.png and s0.json"):
        read_slice_masks(masks, ["s0", "s1", "s2"], shape=(6, 8))


def test_nifti_mask_is_checked_against_the_series_shape_and_affine(tmp_path):
    from medimg.common.nifti import write_nifti

    mask = np.zeros((3, 4, 5), np.uint8)
    mask[1, 2, 3] = 1
    affine = np.array([[-0.5, 0, 0, 10.0], [0, -0.5, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])
    case = tmp_path / "case"
    write_nifti(case / "mask.nii.gz", mask, affine)
    read = read_nifti_mask(case / "mask.nii.gz", shape=(3, 4, 5), affine_ras=affine)
    assert read.dtype == bool and np.argwhere(read).tolist() == [[1, 2, 3]]
    with pytest.raises(InputError, match=r"expected a mask of shape \(3, 4, 6\)"):
        read_nifti_mask(case / "mask.nii.gz", shape=(3, 4, 6))
    shifted = affine.copy()
    shifted[2, 3] += 1.0
    with pytest.raises(InputError, match="expected a mask aligned with the CT series"):
        read_nifti_mask(case / "mask.nii.gz", shape=(3, 4, 5), affine_ras=shifted)
    # The NIfTI volume wins over a masks/ folder; a case with neither is refused.
    (case / "masks").mkdir()
    whole, labelled = read_case_mask(case, shape=(3, 4, 5), slice_names=["a", "b", "c"], affine_ras=affine)
    assert labelled.all() and int(whole.sum()) == 1
    with pytest.raises(InputError, match="expected a mask in case 'nothing'"):
        read_case_mask(tmp_path / "nothing", shape=(3, 4, 5), slice_names=["a", "b", "c"])
