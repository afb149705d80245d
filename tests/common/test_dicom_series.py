import shutil
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

from medimg.common.dicom_series import CTSeries, list_series, read_ct_series
from medimg.common.errors import FormatError, InputError

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ROWS, COLUMNS = 4, 5
# Rows and columns differ in count and in spacing so that a swapped axis shows up.
ROW_SPACING, COLUMN_SPACING = 0.5, 0.8


def _raw(k: int) -> np.ndarray:
    """Raw stored values of synthetic slice k: distinct per pixel and per slice."""
    return (np.arange(ROWS * COLUMNS, dtype=np.int16).reshape(ROWS, COLUMNS) + 100 * k).astype(np.int16)


def _write(path: Path, *, series: str, position, raw: np.ndarray, instance: int = 1, orientation=AXIAL,
           slope: float = 1.0, intercept: float = -1024.0, image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
           modality: str = "CT", sop_uid: str | None = None, syntax=ExplicitVRLittleEndian, description: str = "",
           drop: tuple[str, ...] = (), **extra) -> Path:
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series
    ds.SeriesDescription = description
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [ROW_SPACING, COLUMN_SPACING]
    ds.SliceThickness = 2.0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.Rows, ds.Columns = raw.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = raw.astype("<i2").tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    for keyword in drop:
        delattr(ds, keyword)
    if syntax == RLELossless:
        ds.compress(RLELossless, raw, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _stack(folder: Path, heights, *, series: str | None = None, instances=None, names=None, **kwargs) -> str:
    """Axial slices at z = heights (slice k gets raw values _raw(k)); returns the series UID."""
    series = series or generate_uid()
    instances = instances or list(range(1, len(heights) + 1))
    names = names or [f"im{k:03d}.dcm" for k in range(len(heights))]
    for k, z in enumerate(heights):
        _write(folder / names[k], series=series, position=(10.0, 20.0, z), raw=_raw(k), instance=instances[k], **kwargs)
    return series


def _pydicom_files() -> Path:
    path = Path(pydicom.data.__file__).parent / "test_files"
    if not (path / "CT_small.dcm").exists():
        pytest.skip("pydicom's test files are not installed")
    return path


# ---------------------------------------------------------------------------------------------
# Sorting, HU, affine


@pytest.mark.parametrize("instances, word", [([5, 4, 3, 2, 1], "reversed"), ([3, 1, 5, 2, 4], "shuffled")])
def test_slices_are_sorted_by_position_not_instance_number(tmp_path, instances, word):
    # Physical slice k sits at z = 2k mm, holds _raw(k) and is numbered instances[k].
    _stack(tmp_path, [2.0 * k for k in range(5)], instances=instances, names=[f"{n}.dcm" for n in instances])
    series = read_ct_series(tmp_path)
    assert isinstance(series, CTSeries)
    assert series.volume.shape == (5, ROWS, COLUMNS) and series.volume.dtype == np.float32
    for k in range(5):
        np.testing.assert_array_equal(series.volume[k], _raw(k) - 1024.0)
    assert [p.name for p in series.files] == [f"{n}.dcm" for n in instances]
    assert series.spacing == pytest.approx((2.0, ROW_SPACING, COLUMN_SPACING))
    relation = "runs against" if word == "reversed" else "order differs from"
    assert series.notes == (f"InstanceNumber {relation} the slice position ({word}): slices sorted by position",)


def test_hounsfield_units_use_slope_and_intercept(tmp_path):
    raw = np.array([[0, 100, -40, 2000, 7]], dtype=np.int16)
    uid = generate_uid()
    _write(tmp_path / "a.dcm", series=uid, position=(0, 0, 0), raw=raw, slope=2.5, intercept=-1000.0, syntax=ImplicitVRLittleEndian)
    _write(tmp_path / "b.dcm", series=uid, position=(0, 0, 1), raw=raw, slope=1.0, intercept=-1024.0, syntax=ImplicitVRLittleEndian)
    volume = read_ct_series(tmp_path).volume
    # Hand-computed raw * slope + intercept, per slice (slopes may differ between slices).
    np.testing.assert_array_equal(volume[0, 0], [-1000.0, -750.0, -1100.0, 4000.0, -982.5])
    np.testing.assert_array_equal(volume[1, 0], [-1024.0, -924.0, -1064.0, 976.0, -1017.0])


def test_affine_maps_voxel_index_to_patient_mm(tmp_path):
    _stack(tmp_path, [30.0, 32.0, 34.0])
    series = read_ct_series(tmp_path)
    i, j, k = 2, 3, 1  # column, row, slice: volume[k, j, i]
    assert series.affine @ [i, j, k, 1] == pytest.approx([10.0 + 2 * 0.8, 20.0 + 3 * 0.5, 30.0 + 1 * 2.0, 1.0])
    assert series.affine_ras @ [i, j, k, 1] == pytest.approx([-11.6, -21.5, 32.0, 1.0])
    assert series.affine.dtype == np.float64


def test_affine_of_a_coronal_stack_follows_the_normal(tmp_path):
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # rows go to the patient's left, columns downward
    uid = generate_uid()
    for k, y in enumerate([6.0, 0.0, 3.0]):  # normal = row x column = +y (posterior)
        _write(tmp_path / f"{k}.dcm", series=uid, position=(-5.0, y, 40.0), orientation=coronal, raw=_raw(k))
    series = read_ct_series(tmp_path)
    np.testing.assert_array_equal(series.volume[:, 0, 0], [_raw(1)[0, 0] - 1024, _raw(2)[0, 0] - 1024, _raw(0)[0, 0] - 1024])
    # Voxel (i=1, j=2, k=2): 0.8 mm left, 1.0 mm down (z decreases), two 3 mm slices posterior of y=0.
    assert series.affine @ [1, 2, 2, 1] == pytest.approx([-5.0 + 0.8, 6.0, 40.0 - 1.0, 1.0])


def test_rle_compressed_series_decodes_like_the_uncompressed_one(tmp_path):
    _stack(tmp_path / "rle", [0.0, 1.5, 3.0], syntax=RLELossless)
    series = read_ct_series(tmp_path / "rle")
    for k in range(3):
        np.testing.assert_array_equal(series.volume[k], _raw(k) - 1024.0)


# ---------------------------------------------------------------------------------------------
# Verdicts on the geometry


@pytest.mark.parametrize("make, got", [
    (lambda folder: _stack(folder, [0.0, 2.0, 4.0, 8.0, 10.0]),
     "(2.00 mm apart), got a gap of 4.00 mm (about 1 missing slice) between slice positions 4.00 and 8.00 mm "
     "('im002.dcm' and 'im003.dcm')"),
    # Inside one run of a variable-spacing series: slice 19 at 13 x 4.22 + 1.14 + 5 x 7.38 = 92.90 mm,
    # slice 21 two steps of 7.38 mm further.
    (lambda folder: spec_like_series(folder, tilt_deg=0.0, skip={20})[0],
     "(7.38 mm apart), got a gap of 14.76 mm (about 1 missing slice) between slice positions 92.90 and 107.66 mm "
     "('im019.dcm' and 'im021.dcm')"),
], ids=["even series", "one run of a variable series"])
def test_missing_slice_is_a_gap_verdict(tmp_path, make, got):
    uid = make(tmp_path)
    with pytest.raises(FormatError) as caught:
        read_ct_series(tmp_path)
    assert str(caught.value) == f"expected evenly spaced slices in series {uid} {got}"


def test_uneven_spacing_says_min_and_max(tmp_path):
    _stack(tmp_path, [0.0, 2.0, 4.0, 7.0, 9.0])
    with pytest.raises(FormatError, match=r"expected evenly spaced slices .* got uneven spacing from 2\.00 to 3\.00 mm"):
        read_ct_series(tmp_path)


def test_small_position_jitter_is_accepted_with_the_mean_spacing(tmp_path):
    _stack(tmp_path, [0.0, 2.01, 3.99, 6.0])
    assert read_ct_series(tmp_path).spacing[0] == pytest.approx(2.0)


def test_two_images_at_one_position_are_refused(tmp_path):
    _stack(tmp_path, [0.0, 2.0, 2.0, 4.0])
    with pytest.raises(FormatError, match=r"expected one image per slice position .* 'im001.dcm' and 'im002.dcm' both at 2\.00 mm"):
        read_ct_series(tmp_path)


def test_a_copied_file_is_read_once(tmp_path):
    _stack(tmp_path, [0.0, 2.0, 4.0])
    shutil.copy(tmp_path / "im001.dcm", tmp_path / "copy_of_im001.dcm")
    series = read_ct_series(tmp_path)
    assert series.volume.shape[0] == 3
    assert any("duplicate file" in note for note in series.notes)


def _tilted(folder: Path, angle_deg: float = 22.0, n: int = 4) -> str:
    # Gantry tilt as scanners write it: an oblique image plane, positions advancing along z (the table).
    t = np.radians(angle_deg)
    orientation = (1.0, 0.0, 0.0, 0.0, np.cos(t), -np.sin(t))
    uid = generate_uid()
    for k in range(n):
        _write(folder / f"{k}.dcm", series=uid, position=(0.0, 0.0, 3.0 * k), orientation=orientation, raw=_raw(k),
               GantryDetectorTilt=-angle_deg)
    return uid


@pytest.mark.parametrize("make, got, runs", [
    # Each 3 mm table step moves 3 sin(22 deg) = 1.12 mm in-plane = 2.25 rows of 0.5 mm; 3 steps = 6.7 rows.
    (_tilted, "22.0 deg off the slice normal (in-plane drift 6.7 pixels over 4 slices; GantryDetectorTilt -22 deg)", ""),
    # The SPEC's series: 151.94 mm of table x sin(18.5 deg) = 48.2 rows of 1 mm; its spacing runs are named too.
    (lambda folder: spec_like_series(folder)[0],
     "18.5 deg off the slice normal (in-plane drift 48.2 pixels over 28 slices; GantryDetectorTilt 18.5 deg)",
     "; the slices also come in 2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm (slices 14-27) along the slice normal "
     "(4.22 and 7.38 mm between slice centres)"),
], ids=["tilt", "tilt and variable spacing"])
def test_gantry_tilt_is_refused_with_its_angle(tmp_path, make, got, runs):
    uid = make(tmp_path)
    with pytest.raises(FormatError) as caught:
        read_ct_series(tmp_path)
    assert str(caught.value) == (
        f"expected slices stacked along their normal in series {uid}, got gantry tilt: the stack runs {got}; rerun with "
        f"--correct-tilt (correct_tilt=True) to shift the slices onto an orthogonal grid, or reslice the series{runs}"
    )


def test_tilt_correction_lines_the_stack_up(tmp_path):
    # Axial slices 2 mm apart whose origin moves 1 mm (= 1 row of 1 mm) posterior per slice: 26.6 deg.
    uid = generate_uid()
    for k in range(4):
        raw = np.full((8, 3), 24, np.int16)  # -1000 HU, so that air brought in (-1024) stands out
        raw[5 - k] = 1000  # the same physical line y = 5 mm, seen at row 5 - k of slice k
        _write(tmp_path / f"{k}.dcm", series=uid, position=(0.0, float(k), 2.0 * k), raw=raw, PixelSpacing=[1.0, 1.0])
    with pytest.raises(FormatError, match=r"26\.6 deg off the slice normal \(in-plane drift 3\.0 pixels"):
        read_ct_series(tmp_path)
    series = read_ct_series(tmp_path, correct_tilt=True)
    assert series.volume.shape == (4, 8, 3)
    for k in range(4):
        assert np.flatnonzero(series.volume[k, :, 0] == -24.0).tolist() == [5]
        # Rows shifted in from outside the scanned field are air.
        assert np.all(series.volume[k, :k, :] == -1024.0)
    assert series.affine @ [0, 5, 3, 1] == pytest.approx([0.0, 5.0, 6.0, 1.0])
    assert any("gantry tilt 26.6 deg" in note for note in series.notes)
    assert series.resampled


def test_a_drifting_stack_with_a_header_tilt_gets_one_tilt_line(tmp_path, capsys):
    # Axial image plane, origin moving 1 mm posterior per 2 mm slice (26.6 deg), GantryDetectorTilt 15:
    # the header tilt is said on the one correction line, never contradicted by a second one.
    uid = generate_uid()
    for k in range(4):
        _write(tmp_path / f"{k}.dcm", series=uid, position=(0.0, float(k), 2.0 * k), raw=_raw(k), PixelSpacing=[1.0, 1.0],
               GantryDetectorTilt=15.0)
    capsys.readouterr()
    series = read_ct_series(tmp_path, correct_tilt=True)
    err = capsys.readouterr().err
    tilt_lines = [line for line in err.splitlines() if "tilt" in line.lower()]
    assert tilt_lines == [
        "Warning: gantry tilt 26.6 deg (GantryDetectorTilt 15 deg): slices shifted in-plane by up to 3.0 pixels onto an "
        "orthogonal grid (linear interpolation, -1024 HU outside the scanned field)"
    ]
    assert [note for note in series.notes if "tilt" in note.lower()] == [tilt_lines[0].removeprefix("Warning: ")]
    assert series.resampled


def test_a_header_tilt_without_any_in_the_geometry_is_one_warning(tmp_path, capsys):
    _stack(tmp_path, [0.0, 2.0, 4.0], GantryDetectorTilt=15.0)
    capsys.readouterr()
    series = read_ct_series(tmp_path, correct_tilt=True)
    tilt_lines = [line for line in capsys.readouterr().err.splitlines() if "tilt" in line.lower()]
    assert tilt_lines == [
        "Warning: GantryDetectorTilt says 15 deg but the slice geometry shows no such tilt: trusting "
        "ImagePositionPatient/ImageOrientationPatient"
    ]
    assert not series.resampled  # nothing was shifted: the volume lies on the source pixels


# ---------------------------------------------------------------------------------------------
# Variable slice spacing (SPEC section 5: an old GE head CT, finer through the skull base)

# Table steps between slice centres: 14 slices 4.22 mm apart, one 1.14 mm step, 14 slices 7.38 mm apart.
SPEC_TABLE_STEPS = [4.22] * 13 + [1.14] + [7.38] * 13
SPEC_ROWS, SPEC_COLUMNS = 64, 3


def spec_like_series(folder: Path, *, tilt_deg: float = 18.5, along_table: bool = True, skip=()) -> tuple[str, np.ndarray]:
    """The SPEC's GE series in miniature; returns its UID and the (28,) slice heights along the normal (mm).

    The image plane is tilted by ``tilt_deg`` (IOP (1, 0, 0 / 0, cos, -sin), GantryDetectorTilt).
    ``along_table``: the positions advance along z as the table moves (the stack drifts in-plane,
    the steps along the normal are the table steps x cos(tilt)); else along the slice normal by the
    table steps. Slice k holds 10 k + column HU on every row, so that interpolation between slices
    and the in-plane tilt shift (rows) can each be checked by hand. Slices in ``skip`` are not written.
    """
    t = np.radians(tilt_deg)
    orientation = (1.0, 0.0, 0.0, 0.0, np.cos(t), -np.sin(t))
    normal = np.array([0.0, np.sin(t), np.cos(t)])
    table = np.concatenate([[0.0], np.cumsum(SPEC_TABLE_STEPS)])
    uid = generate_uid()
    for k, z in enumerate(table):
        if k in skip:
            continue
        position = (0.0, 0.0, z) if along_table else tuple(z * normal)
        raw = np.broadcast_to(10 * k + np.arange(SPEC_COLUMNS), (SPEC_ROWS, SPEC_COLUMNS)).astype(np.int16)
        _write(folder / f"im{k:03d}.dcm", series=uid, position=position, orientation=orientation, raw=raw, instance=k + 1,
               intercept=0.0, PixelSpacing=[1.0, 1.0], GantryDetectorTilt=tilt_deg)
    return uid, table * (np.cos(t) if along_table else 1.0)


def _run_fields(series: CTSeries) -> list[tuple[float, int, int]]:
    return [(run.spacing_mm, run.first_slice, run.last_slice) for run in series.spacing_runs]


def test_spec_series_with_tilt_is_tilt_corrected_and_resampled_onto_one_grid(tmp_path, capsys):
    uid, heights = spec_like_series(tmp_path)
    capsys.readouterr()
    series = read_ct_series(tmp_path, correct_tilt=True)
    cos = np.cos(np.radians(18.5))
    fine, coarse = 4.22 * cos, 7.38 * cos  # 4.00 and 7.00 mm between the tilted planes
    assert _run_fields(series) == [(pytest.approx(fine), 0, 13), (pytest.approx(coarse), 14, 27)]
    # 13 x 4.22 + 1.14 + 13 x 7.38 = 151.94 mm of table = 36.005 fine steps: 37 slices, the last 0.02 mm short.
    assert series.resampled_grid.spacing_mm == pytest.approx(fine) and series.resampled_grid.slices == 37
    assert series.volume.shape == (37, SPEC_ROWS, SPEC_COLUMNS) and series.volume.dtype == np.float32
    assert series.spacing == pytest.approx((fine, 1.0, 1.0))
    assert series.affine[:3, 2] == pytest.approx(np.array([0.0, np.sin(np.radians(18.5)), cos]) * fine)
    assert series.resampled and series.tilt_deg == pytest.approx(18.5) and len(series.files) == 28

    # Row 0 stays inside the scanned field after the tilt shift (the last slice moves 48 rows), so
    # it shows the interpolation along the normal alone: grid slice m at m x 4.00 mm.
    columns = np.arange(SPEC_COLUMNS)
    np.testing.assert_allclose(series.volume[1, 0], 10.0 + columns, atol=1e-3)  # on source slice 1
    np.testing.assert_allclose(series.volume[13, 0], 130.0 + columns, atol=1e-3)  # on source slice 13
    # Grid slice 14 (56.03 mm) lies between slice 14 (53.11 mm) and slice 15, 7.00 mm further.
    weight = (14 * fine - (13 * fine + 1.14 * cos)) / coarse
    np.testing.assert_allclose(series.volume[14, 0], 140.0 + 10.0 * weight + columns, atol=1e-3)
    assert weight == pytest.approx(0.4174, abs=1e-4)
    expected = np.interp(heights[0] + fine * np.arange(37), heights, 10.0 * np.arange(28))
    np.testing.assert_allclose(series.volume[:, 0, 0], expected, atol=1e-3)

    err = capsys.readouterr().err
    assert (
        "Warning: variable slice spacing, 2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm (slices 14-27) along the slice "
        "normal (4.22 and 7.38 mm between slice centres; gantry tilt 18.5 deg): resampled onto a regular grid of 37 slices "
        "4.00 mm apart (the smallest spacing, as dcm2niix; linear interpolation in HU)"
    ) in err.splitlines()
    assert "Warning: gantry tilt 18.5 deg (GantryDetectorTilt 18.5 deg): slices shifted in-plane" in err
    assert [note for note in series.notes if "spacing" in note] == [
        line.removeprefix("Warning: ") for line in err.splitlines() if "spacing" in line
    ]


def test_spec_series_without_resampling_is_refused_with_its_runs(tmp_path):
    uid, _ = spec_like_series(tmp_path)
    with pytest.raises(FormatError) as caught:
        read_ct_series(tmp_path, correct_tilt=True, resample=False)
    assert str(caught.value) == (
        f"expected evenly spaced slices in series {uid}, got 2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm "
        "(slices 14-27) along the slice normal (4.22 and 7.38 mm between slice centres; gantry tilt 18.5 deg); rerun "
        "without --no-resample (resample=True) to resample them onto one regular grid of 4.00 mm, as dcm2niix does"
    )


def test_untilted_variable_spacing_says_the_table_spacings(tmp_path, capsys):
    uid, heights = spec_like_series(tmp_path, tilt_deg=0.0)
    with pytest.raises(FormatError) as caught:
        read_ct_series(tmp_path, resample=False)
    assert str(caught.value) == (
        f"expected evenly spaced slices in series {uid}, got 2 spacing runs: 4.22 mm (slices 0-13) and 7.38 mm "
        "(slices 14-27) along the slice normal; rerun without --no-resample (resample=True) to resample them onto one "
        "regular grid of 4.22 mm, as dcm2niix does"
    )
    capsys.readouterr()
    series = read_ct_series(tmp_path)
    assert capsys.readouterr().err.splitlines() == [
        "Warning: variable slice spacing, 2 spacing runs: 4.22 mm (slices 0-13) and 7.38 mm (slices 14-27) along the "
        "slice normal: resampled onto a regular grid of 37 slices 4.22 mm apart (the smallest spacing, as dcm2niix; "
        "linear interpolation in HU)"
    ]
    assert series.tilt_deg == 0.0 and series.volume.shape == (37, SPEC_ROWS, SPEC_COLUMNS)
    # Without a tilt shift every row shows the interpolation: grid slice 20 at 84.40 mm lies
    # 84.40 - 56.00 = 28.40 mm into the coarse run, 3.848 steps of 7.38 mm past slice 14.
    np.testing.assert_allclose(series.volume[20], 140.0 + 10.0 * (20 * 4.22 - 56.0) / 7.38 + np.arange(SPEC_COLUMNS)[None, :]
                               + np.zeros((SPEC_ROWS, 1)), atol=1e-3)


def test_an_oblique_plane_stacked_along_its_normal_names_the_tilt_without_correction(tmp_path, capsys):
    spec_like_series(tmp_path, along_table=False)
    capsys.readouterr()
    series = read_ct_series(tmp_path)  # no drift: nothing to correct in-plane, only the spacing
    err = capsys.readouterr().err
    assert "gantry tilt 18.5 deg (GantryDetectorTilt): the image plane is oblique and the affine follows it" in err
    assert (
        "Warning: variable slice spacing, 2 spacing runs: 4.22 mm (slices 0-13) and 7.38 mm (slices 14-27) along the "
        "slice normal (gantry tilt 18.5 deg): resampled onto a regular grid of 37 slices 4.22 mm apart"
    ) in err
    assert series.tilt_deg == pytest.approx(18.5) and series.resampled_grid.slices == 37
    np.testing.assert_allclose(series.volume[:, :, 0], series.volume[:, :1, 0].repeat(SPEC_ROWS, axis=1))  # no row shift


def test_runs_that_share_a_slice_and_three_runs(tmp_path):
    (tmp_path / "two").mkdir()
    _stack(tmp_path / "two", [0.0, 2.0, 4.0, 6.0, 9.0, 12.0, 15.0])
    series = read_ct_series(tmp_path / "two")
    assert _run_fields(series) == [(pytest.approx(2.0), 0, 3), (pytest.approx(3.0), 3, 6)]
    # Grid slices 4 and 5 at 8 and 10 mm: 2/3 of the way from slice 3 to 4, 1/3 from 4 to 5.
    # 15 mm / 2 mm = 7.5 steps, rounded to 8: the last grid slice at 16 mm, half a step past the
    # last source slice, holds that slice's values.
    assert series.resampled_grid.slices == 9
    np.testing.assert_allclose(series.volume[[3, 4, 5, 8], 0, 0] + 1024.0, [300.0, 366.667, 433.333, 600.0], atol=1e-3)
    np.testing.assert_allclose(series.volume[:, 0, 0] + 1024.0, np.interp(2.0 * np.arange(9), [0, 2, 4, 6, 9, 12, 15], 100.0 * np.arange(7)), atol=1e-3)
    uid = _stack(tmp_path / "three", [0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 9.5, 12.5, 15.5])
    with pytest.raises(FormatError, match=r"got 3 spacing runs: 1\.00 mm \(slices 0-3\), 2\.00 mm \(slices 3-6\) and 3\.00 mm "
                                          r"\(slices 7-9\) along the slice normal; rerun without --no-resample"):
        read_ct_series(tmp_path / "three", resample=False)
    assert uid


def test_an_evenly_spaced_series_is_untouched(tmp_path, capsys):
    _stack(tmp_path, [0.0, 2.0, 4.0, 6.0])
    capsys.readouterr()
    series = read_ct_series(tmp_path, resample=True)
    assert capsys.readouterr().err == "" and series.notes == ()
    assert _run_fields(series) == [(pytest.approx(2.0), 0, 3)] and series.resampled_grid is None
    assert not series.resampled and series.tilt_deg == 0.0
    for k in range(4):
        np.testing.assert_array_equal(series.volume[k], _raw(k) - 1024.0)


def test_one_file_of_a_multi_slice_series_names_its_folder(tmp_path):
    uid = _stack(tmp_path / "ct", [0.0, 2.0, 4.0])
    (tmp_path / "ct" / "notes.txt").write_text("not DICOM\n")
    _stack(tmp_path / "ct", [0.0], names=["other.dcm"])  # another series beside it does not count
    with pytest.raises(InputError) as caught:
        read_ct_series(tmp_path / "ct" / "im001.dcm")
    assert str(caught.value) == (
        "expected a DICOM folder (a single file only when it is the whole series), got 'im001.dcm', while its folder "
        f"'{tmp_path / 'ct'}' holds 3 slices of that series {uid}; pass the folder instead"
    )
    assert read_ct_series(tmp_path / "ct" / "other.dcm").volume.shape == (1, ROWS, COLUMNS)


# ---------------------------------------------------------------------------------------------
# Choosing the series and the files


def test_two_series_need_a_choice(tmp_path):
    first = _stack(tmp_path / "s1", [0.0, 2.0, 4.0], description="Bone")
    second = _stack(tmp_path / "s2", [0.0, 1.0, 2.0, 3.0], description="Soft")
    with pytest.raises(InputError) as caught:
        read_ct_series(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"expected one CT series in '{tmp_path}' or a choice with --series UID, got 2 CT series: ")
    assert f"{first} (3 images, CT, 'Bone')" in message and f"{second} (4 images, CT, 'Soft')" in message
    chosen = read_ct_series(tmp_path, series_uid=second)
    assert chosen.series_uid == second and chosen.volume.shape == (4, ROWS, COLUMNS)
    assert all(path.parent.name == "s2" for path in chosen.files)
    assert sorted((s.uid, s.images) for s in list_series(tmp_path)) == sorted([(first, 3), (second, 4)])


def test_unknown_series_uid_lists_what_is_there(tmp_path):
    uid = _stack(tmp_path, [0.0, 2.0])
    with pytest.raises(InputError, match=rf"got '1\.2\.3\.4'; the folder holds: {uid} \(2 images, CT\)"):
        read_ct_series(tmp_path, series_uid="1.2.3.4")


def test_junk_files_and_dicomdir_are_ignored(tmp_path):
    _stack(tmp_path / "a" / "b", [0.0, 2.0, 4.0])
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "a" / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "a" / "looks_headerless").write_bytes(b"\x08\x00\x05\x00" + b"\xff" * 64)
    shutil.copy(_pydicom_files() / "dicomdirtests" / "DICOMDIR", tmp_path / "DICOMDIR")
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (3, ROWS, COLUMNS)
    assert series.notes[0].startswith("ignored 4 file(s) that are not DICOM images (")


def test_file_without_preamble_and_meta_header_is_read(tmp_path):
    # Old exports write the bare data set: no 128-byte preamble, no "DICM", no transfer syntax.
    _stack(tmp_path, [0.0, 2.0])
    for path in tmp_path.iterdir():
        ds = pydicom.dcmread(path)
        del ds.file_meta
        ds.preamble = None
        ds.save_as(path, implicit_vr=True, little_endian=True)
    assert (tmp_path / "im000.dcm").read_bytes()[:2] == b"\x08\x00"
    series = read_ct_series(tmp_path)
    np.testing.assert_array_equal(series.volume[1], _raw(1) - 1024.0)


def test_folder_without_dicom_is_a_format_error(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    expected = r"expected DICOM images in '.*' or its subfolders, got none among 1 files \(e\.g\. 'readme\.txt'\)"
    with pytest.raises(FormatError, match=expected):
        read_ct_series(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_ct_series(tmp_path / "missing")


def test_non_ct_folder_is_a_format_error(tmp_path):
    _stack(tmp_path, [0.0, 2.0], modality="MR")
    with pytest.raises(FormatError, match=r"expected a CT series in '.*', got no CT series; found: .* \(2 images, MR\)"):
        read_ct_series(tmp_path)


def test_localizer_is_dropped_with_a_note(tmp_path, capsys):
    uid = _stack(tmp_path, [0.0, 2.0, 4.0])
    _write(tmp_path / "scout.dcm", series=uid, position=(-250.0, 0.0, 100.0), orientation=(0, 1, 0, 0, 0, -1),
           raw=_raw(9), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (3, ROWS, COLUMNS)
    assert "scout.dcm" not in [p.name for p in series.files]
    assert series.notes == (f"dropped 1 localizer image(s) (ImageType LOCALIZER) from series {uid}",)
    assert "dropped 1 localizer" in capsys.readouterr().err


def test_unflagged_image_in_another_plane_is_dropped_with_a_warning(tmp_path, capsys):
    uid = _stack(tmp_path, [0.0, 2.0, 4.0])
    _write(tmp_path / "odd.dcm", series=uid, position=(0.0, 0.0, 0.0), orientation=(0, 1, 0, 0, 0, -1), raw=_raw(9))
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (3, ROWS, COLUMNS)
    assert "Warning: dropped 1 image(s) whose ImageOrientationPatient differs" in capsys.readouterr().err


def test_mixed_orientations_without_majority_are_refused(tmp_path):
    uid = _stack(tmp_path, [0.0, 2.0])
    for k in range(2):
        _write(tmp_path / f"sag{k}.dcm", series=uid, position=(2.0 * k, 0.0, 0.0), orientation=(0, 1, 0, 0, 0, -1), raw=_raw(k))
    expected = r"expected one ImageOrientationPatient in series .*, got mixed orientations with no clear majority: 2 x \["
    with pytest.raises(FormatError, match=expected):
        read_ct_series(tmp_path)


def test_only_localizers_is_not_a_ct_volume(tmp_path):
    _stack(tmp_path, [0.0, 2.0], image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    with pytest.raises(FormatError, match=r"expected a CT series in '.*', got only localizer CT series: "):
        read_ct_series(tmp_path)


def test_missing_image_position_is_refused(tmp_path):
    uid = _stack(tmp_path, [0.0, 2.0])
    _write(tmp_path / "nopos.dcm", series=uid, position=(0, 0, 4.0), raw=_raw(2), drop=("ImagePositionPatient",))
    expected = (rf"expected ImagePositionPatient \(3 numbers\) on every image of series {uid}, "
                r"got 1 of 3 images without a usable one \(e\.g\. 'nopos\.dcm'\)")
    with pytest.raises(FormatError, match=expected):
        read_ct_series(tmp_path)


def test_undecodable_pixel_data_names_the_transfer_syntax(tmp_path):
    from pydicom.encaps import encapsulate

    uid = generate_uid()
    path = _write(tmp_path / "bad.dcm", series=uid, position=(0, 0, 0), raw=_raw(0))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\x00not a codestream\x00"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    expected = (r"expected pixel data that pydicom can decode .*, "
                r"got JPEG 2000 Image Compression \(Lossless Only\) \(1\.2\.840\.10008\.1\.2\.4\.90\) in 'bad\.dcm'")
    with pytest.raises(FormatError, match=expected):
        read_ct_series(tmp_path)


# ---------------------------------------------------------------------------------------------
# pydicom's real CT files


def test_real_single_slice_ct_small(tmp_path):
    source = _pydicom_files() / "CT_small.dcm"
    shutil.copy(source, tmp_path / "CT_small.dcm")
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (1, 128, 128)
    assert series.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    np.testing.assert_array_equal(series.volume[0], pydicom.dcmread(source).pixel_array.astype(np.float32) - 1024.0)
    assert (series.volume.min(), series.volume.max()) == (-896.0, 1167.0)
    assert series.affine[:3, 3] == pytest.approx([-158.135803, -179.035797, -75.699997])
    assert series.notes == ("single slice: slice spacing taken from SliceThickness (5 mm)",)


def test_real_reversed_numbering_beside_a_scout_series(tmp_path):
    shutil.copytree(_pydicom_files() / "dicomdirtests" / "98892001", tmp_path / "98892001")  # CT5N + CT2N (scouts)
    shutil.copy(_pydicom_files() / "dicomdirtests" / "DICOMDIR", tmp_path / "DICOMDIR")
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (5, 16, 16)
    assert series.spacing == pytest.approx((2.5, 0.488281, 0.488281))
    # Instance numbers 6..10 run from z = 8.76 down to -1.24 mm: the volume starts with the last one.
    assert [p.name for p in series.files] == ["3353", "3023", "2693", "2392", "2062"]
    assert series.affine @ [0, 0, 4, 1] == pytest.approx([-72.199997, -143.0, 8.7625, 1.0])
    assert (series.volume.min(), series.volume.max()) == (-888.0, 85.0)
    assert any("skipped localizer series" in note and "'Scout'" in note for note in series.notes)
    assert any("(reversed)" in note for note in series.notes)


def test_real_series_with_a_gap(tmp_path):
    shutil.copytree(_pydicom_files() / "dicomdirtests" / "77654033", tmp_path / "77654033")  # CT2 + three CR images
    with pytest.raises(FormatError) as caught:
        read_ct_series(tmp_path)
    assert str(caught.value) == (
        "expected evenly spaced slices in series 1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2 (1.25 mm apart), "
        "got a gap of 202.50 mm (about 161 missing slices) between slice positions -99.48 and 103.02 mm "
        "('77654033/CT2/17106' and '77654033/CT2/17136')"
    )


def _j2k_decodable() -> bool:
    try:
        from pydicom.pixels.decoders.base import get_decoder

        return get_decoder(JPEG2000Lossless).is_available
    except Exception:
        return False


@pytest.mark.skipif(not _j2k_decodable(), reason="no JPEG 2000 decoder (pylibjpeg-openjpeg or Pillow with OpenJPEG)")
def test_real_tilted_jpeg2000_slice(tmp_path):
    shutil.copy(_pydicom_files() / "J2K_pixelrep_mismatch.dcm", tmp_path / "slice.dcm")
    series = read_ct_series(tmp_path)
    assert series.volume.shape == (1, 512, 512)
    assert series.spacing == pytest.approx((5.0, 0.431, 0.431))
    # Stored unsigned in the codestream but signed in the header: decoded as signed, outside the field at -2000.
    assert (series.volume.min(), series.volume.max()) == (-2000.0, 1896.0)
    # The 22-degree tilted plane is carried by the affine: columns run along (0, 0.9272, -0.3746).
    column = np.array([0.0, 0.9272, -0.3746])  # IOP as written, a unit vector to 4 decimals
    assert series.affine[:3, 1] == pytest.approx(column * 0.431, abs=1e-4)
    assert series.affine[:3, 2] == pytest.approx(np.cross([1.0, 0.0, 0.0], column) * 5.0, abs=1e-3)
    assert np.degrees(np.arccos(series.affine[2, 2] / 5.0)) == pytest.approx(22.0, abs=0.05)
    assert any("gantry tilt -22 deg" in note for note in series.notes)


def test_a_slice_without_rescale_tags_takes_the_series_value_with_a_note(tmp_path, capsys):
    uid = generate_uid()
    for k in range(3):
        drop = ("RescaleSlope", "RescaleIntercept") if k == 1 else ()
        _write(tmp_path / f"im{k}.dcm", series=uid, position=(10.0, 20.0, 2.0 * k), raw=_raw(k), instance=k + 1, drop=drop)
    series = read_ct_series(tmp_path)
    np.testing.assert_array_equal(series.volume[1], _raw(1).astype(np.float32) - 1024.0)  # not 1,024 HU off
    assert any("1 slice(s) without RescaleSlope/RescaleIntercept ('im1.dcm')" in note and "intercept -1024" in note
               for note in series.notes)
    assert "Warning:" in capsys.readouterr().err


def test_a_series_without_any_rescale_tags_is_refused(tmp_path):
    _stack(tmp_path, [0.0, 2.0, 4.0], drop=("RescaleSlope", "RescaleIntercept"))
    with pytest.raises(FormatError, match="RescaleSlope and RescaleIntercept .* neither in any of its 3 slices; Hounsfield units cannot be known"):
        read_ct_series(tmp_path)


def test_a_slice_without_rescale_tags_among_disagreeing_slices_is_refused(tmp_path):
    uid = generate_uid()
    for k, (intercept, drop) in enumerate(((-1024.0, ()), (-1000.0, ()), (-1024.0, ("RescaleSlope", "RescaleIntercept")))):
        _write(tmp_path / f"im{k}.dcm", series=uid, position=(10.0, 20.0, 2.0 * k), raw=_raw(k), instance=k + 1, intercept=intercept,
               drop=drop)
    with pytest.raises(FormatError, match="1 slice\\(s\\) without them \\('im2.dcm'\\) while the others disagree"):
        read_ct_series(tmp_path)
