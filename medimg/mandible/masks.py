"""Training masks: NIfTI volumes, PNG slices, or Labelme polygons (as the paper annotated).

Training data layout (``medimg mandible train DATA_DIR``)::

    DATA_DIR/
      case1/                      a DICOM case (``medimg mandible synth`` writes exactly this)
        dicom/IM0001.dcm ...      the CT series (or DICOM files anywhere in case1/)
        mandible_mask.nii.gz      mask volume aligned with the series (or mask.nii.gz / .nii)
      case2/                      an image case (slices exported as pictures, like the paper's)
        images/0001.png ...       grey 8-bit slices, already windowed, in name order
        masks/0001.png ...        nonzero = mandible, same names as the images
        masks/0001.json ...       or Labelme annotations (polygons labelled "mandible")

A case takes its mask from exactly one source, looked up in this order: a NIfTI volume
(``mask.nii.gz``, ``mask.nii``, ``mandible_mask.nii.gz``, ``mandible_mask.nii``), else a
``masks/`` folder. In ``masks/`` the file for a slice is named after it: the image's name for an
image case, the DICOM file's name without a ``.dcm`` suffix for a DICOM case (``IM0001.dcm`` ->
``IM0001.png`` or ``IM0001.json``). A slice without a mask file is unlabelled and not used for
training (the paper annotated a subset of slices); an empty mask PNG or a Labelme file without
mandible shapes is a labelled slice without mandible.

Labelme files: ``shapes`` whose ``label`` is "mandible" in any letter case (other labels, e.g.
"maxilla", are ignored) and whose ``shape_type`` is ``polygon`` (or absent) are filled; ``points``
are ``[x, y]`` in pixels (x = column, y = row, pixel centres at integers); the picture size comes
from ``imageHeight`` and ``imageWidth`` and must equal the slice's. A pixel is inside when its
centre is (``skimage.draw.polygon``); several polygons are united.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medimg.common.errors import FormatError, InputError, expected

MANDIBLE_LABEL = "mandible"
NIFTI_MASK_NAMES = ("mask.nii.gz", "mask.nii", "mandible_mask.nii.gz", "mandible_mask.nii")
MASKS_FOLDER = "masks"
POLYGON_SHAPE_TYPES = ("polygon", None)


def _check_shape(got: tuple[int, ...], shape: tuple[int, ...] | None, path: Path) -> None:
    if shape is not None and tuple(got) != tuple(shape):
        raise InputError(expected(f"a mask of shape {tuple(shape)} (the image's)", f"{tuple(got)} in '{path.name}'"))


def read_labelme_mask(path: Path | str, *, shape: tuple[int, int] | None = None, label: str = MANDIBLE_LABEL) -> np.ndarray:
    """Rasterise the polygons labelled ``label`` (any letter case) of a Labelme JSON file.

    Parameters
    ----------
    path : path to a Labelme ``.json``
    shape : (H, W), optional
        The image's size; ``imageHeight``/``imageWidth`` must match it.

    Returns
    -------
    mask : (H, W) ndarray of bool
    """
    from skimage.draw import polygon

    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(expected("a Labelme JSON file", f"'{path.name}' ({error})")) from None
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise FormatError(expected("a Labelme JSON file with a 'shapes' list", f"'{path.name}' without one"))
    try:
        size = (int(document["imageHeight"]), int(document["imageWidth"]))
    except (KeyError, TypeError, ValueError):
        raise FormatError(expected("imageHeight and imageWidth in a Labelme file", f"none in '{path.name}'")) from None
    _check_shape(size, shape, path)
    mask = np.zeros(size, dtype=bool)
    wanted = label.casefold()
    for index, item in enumerate(document["shapes"]):
        if not isinstance(item, dict) or str(item.get("label", "")).strip().casefold() != wanted:
            continue
        kind = item.get("shape_type")
        if kind not in POLYGON_SHAPE_TYPES:
            raise FormatError(expected(f"polygon shapes for label '{label}'", f"a '{kind}' (shape {index}) in '{path.name}'"))
        try:
            points = np.asarray(item["points"], dtype=np.float64).reshape(-1, 2)
        except (KeyError, TypeError, ValueError):
            raise FormatError(expected("points as [[x, y], ...]", f"shape {index} in '{path.name}'")) from None
        if len(points) < 3:
            raise FormatError(expected("a polygon of at least 3 points", f"{len(points)} (shape {index}) in '{path.name}'"))
        rows, columns = polygon(points[:, 1], points[:, 0], shape=size)
        mask[rows, columns] = True
    return mask


def read_png_mask(path: Path | str, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask picture: nonzero pixels (any colour channel, palette index or grey level) are mandible.

    Returns
    -------
    mask : (H, W) ndarray of bool
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            # Palette images keep their indices (Labelme's label PNGs are index 1 = the label).
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise FormatError(expected("a PNG mask", f"'{path.name}' ({error})")) from None
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        pixels = pixels[..., : 3 if channels >= 3 else 1].any(axis=2)  # alpha says nothing about the label
    mask = pixels != 0
    _check_shape(mask.shape, shape, path)
    return mask


def read_slice_masks(folder: Path | str, names: Sequence[str], *, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice masks from a ``masks/`` folder, one file per slice named after it.

    Parameters
    ----------
    folder : path of the ``masks/`` folder
    names : the slices' names without suffix, in volume order
    shape : (H, W) of the slices

    Returns
    -------
    masks : (Z, H, W) ndarray of bool
    labelled : (Z,) ndarray of bool
        False for slices without a mask file (not to be used for training).
    """
    folder = Path(folder)
    masks = np.zeros((len(names), *shape), dtype=bool)
    labelled = np.zeros(len(names), dtype=bool)
    for k, name in enumerate(names):
        png, labelme = folder / f"{name}.png", folder / f"{name}.json"
        if png.exists() and labelme.exists():
            raise FormatError(expected(f"one mask per slice in '{folder.name}'", f"both {png.name} and {labelme.name}"))
        if png.exists():
            masks[k] = read_png_mask(png, shape=shape)
        elif labelme.exists():
            masks[k] = read_labelme_mask(labelme, shape=shape)
        else:
            continue
        labelled[k] = True
    known = set(names)
    strays = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".png", ".json") and p.stem not in known)
    if strays:
        raise InputError(expected(f"mask files named after the slices in '{folder}'", f"{len(strays)} without a slice (e.g. '{strays[0]}')"))
    return masks, labelled


def read_nifti_mask(
    path: Path | str, *, shape: tuple[int, int, int], affine_ras: np.ndarray | None = None, tolerance_mm: float = 0.05
) -> np.ndarray:
    """A mask volume stored as NIfTI, checked against the image it belongs to.

    Parameters
    ----------
    shape : (Z, Y, X) of the image volume
    affine_ras : (4, 4), optional
        The series' voxel -> RAS affine; the mask's must agree within ``tolerance_mm``
        (NIfTI stores it in float32, hence the tolerance).

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool (nonzero voxels)
    """
    from medimg.common.nifti import read_nifti

    path = Path(path)
    volume, mask_affine = read_nifti(path)
    _check_shape(volume.shape, shape, path)
    if affine_ras is not None and not np.allclose(mask_affine, affine_ras, atol=tolerance_mm, rtol=0):
        worst = float(np.abs(np.asarray(mask_affine) - affine_ras).max())
        raise InputError(expected("a mask aligned with the CT series (same affine)", f"an affine {worst:.3g} mm away in '{path.name}'"))
    return np.asarray(volume) != 0


def find_nifti_mask(case_dir: Path | str) -> Path | None:
    """The case's mask volume (first of :data:`NIFTI_MASK_NAMES` present), or None."""
    for name in NIFTI_MASK_NAMES:
        candidate = Path(case_dir) / name
        if candidate.is_file():
            return candidate
    return None


def read_case_mask(
    case_dir: Path | str, *, shape: tuple[int, int, int], slice_names: Sequence[str], affine_ras: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The mask of one training case and which slices are labelled (see the module docstring).

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool
    labelled : (Z,) ndarray of bool
    """
    case_dir = Path(case_dir)
    nifti = find_nifti_mask(case_dir)
    if nifti is not None:
        return read_nifti_mask(nifti, shape=shape, affine_ras=affine_ras), np.ones(shape[0], dtype=bool)
    folder = case_dir / MASKS_FOLDER
    if folder.is_dir():
        return read_slice_masks(folder, slice_names, shape=tuple(shape[1:]))
    raise InputError(expected(f"a mask in case '{case_dir.name}' ({', '.join(NIFTI_MASK_NAMES)} or {MASKS_FOLDER}/)", "none"))
