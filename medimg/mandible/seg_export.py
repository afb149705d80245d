"""The mandible mask as a DICOM Segmentation object, referencing the CT images it was made from.

A DICOM SEG goes back into the PACS next to its CT and opens in any viewer (3D Slicer, OHIF)
aligned with it, coded so that software knows it is the mandible. It must be built on the source
slices' own grid: a mask from a tilt-corrected (resampled) volume does not lie on them.

Frames of slices where the mask is empty are left out, as the standard allows (a viewer takes a
missing frame as empty); an all-empty mask is still written, as one empty frame per source slice,
so that "the model found no mandible" is a readable result rather than a missing file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import atomic_path

SEGMENT_LABEL = "Mandible"
SEG_SERIES_NUMBER = 900  # a high number keeps the derived series after the acquired ones in a viewer
_ALGORITHM_NAME = "medimg mandible res-cbam-unet"


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Pass highdicom's and pydicom's warnings on as one ``Warning:`` line each.

    Their warnings about real-world headers (a one-component PatientName) run over several lines
    with a URL and a source line; the user only needs what is odd, once.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for warning in caught:
                line = _first_sentence(str(warning.message))
                if line and line not in seen:
                    seen.add(line)
                    console.warn(f"DICOM SEG: {line}")


def _first_sentence(message: str) -> str:
    lines = message.strip().splitlines()
    line = lines[0].strip() if lines else ""
    end = line.find(". ")
    return line[: end + 1] if end > 0 else line


def _read_headers(source_files: Sequence[Path]) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for path in source_files:
        path = Path(path)
        if not path.is_file():
            raise InputError(expected("an existing source DICOM file", f"'{path}'"))
        try:
            # highdicom needs only the metadata of the source images, not their pixels.
            datasets.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (InvalidDicomError, OSError, ValueError) as error:
            raise FormatError(expected("a readable DICOM source image", f"'{path.name}' ({error})")) from None
    return datasets


def _derived_uid(kind: str, datasets: list, mask: np.ndarray) -> str:
    """A UID that depends only on the sources, the mask and the version: same input, same file."""
    from pydicom.uid import generate_uid

    from medimg import __version__

    mask_digest = hashlib.sha256(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()
    sources = [str(dataset.SOPInstanceUID) for dataset in datasets]
    return generate_uid(entropy_srcs=[kind, __version__, mask_digest, *sources])


def segment_description():
    """The one segment: label "Mandible", Anatomical Structure / Mandible (SNOMED CT), automatic."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from medimg import __version__

    algorithm = hd.AlgorithmIdentificationSequence(
        name=_ALGORITHM_NAME,
        family=codes.cid7162.ArtificialIntelligence,
        version=__version__,
    )
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.AnatomicalStructure,  # SCT 91723000
        segmented_property_type=codes.SCT.Mandible,  # SCT 91609006
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )


def write_dicom_seg(path: Path | str, mask: np.ndarray, source_files: Sequence[Path], *, inputs: Iterable[Path] = ()) -> Path:
    """Write a binary DICOM SEG of the mandible mask, atomically.

    Parameters
    ----------
    path : Path
        Output file (``.dcm``).
    mask : (Z, Y, X) ndarray of bool
        ``mask[k]`` lies on the image ``source_files[k]`` (the order of ``CTSeries.files``).
    source_files : sequence of Path, length Z
        The single-frame CT images of the series, in volume order.
    inputs : Paths the output must not overwrite

    Returns
    -------
    path : Path
        One multi-frame SEG instance: a frame per source slice that holds mandible (every slice
        when the mask is empty), each referencing its source image's SOP Instance UID.

    Warnings of highdicom and pydicom about the source headers go to stderr as one line each.
    """
    mask = np.asarray(mask)
    source_files = [Path(p) for p in source_files]
    if mask.ndim != 3 or len(source_files) != mask.shape[0]:
        raise InputError(expected("a (Z, Y, X) mask with one slice per source image", f"mask of shape {mask.shape} and {len(source_files)} source images"))
    mask = mask.astype(bool)
    with _warnings_as_lines():
        return _write(Path(path), mask, source_files, inputs=inputs)


def _write(path: Path, mask: np.ndarray, source_files: list[Path], *, inputs: Iterable[Path]) -> Path:
    import highdicom as hd

    from medimg import __version__

    datasets = _read_headers(source_files)
    for dataset, source in zip(datasets, source_files):
        grid = (int(getattr(dataset, "Rows", 0)), int(getattr(dataset, "Columns", 0)))
        frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
        if grid != mask.shape[1:] or frames != 1:
            raise InputError(expected(f"single-frame source images of {mask.shape[1]} x {mask.shape[2]} pixels like the mask", f"'{source.name}' with {frames} frame(s) of {grid[0]} x {grid[1]}"))

    try:
        segmentation = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=mask.astype(np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[segment_description()],
            series_instance_uid=_derived_uid("series", datasets, mask),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=_derived_uid("instance", datasets, mask),
            instance_number=1,
            manufacturer="medimg",
            manufacturer_model_name="medimg mandible",
            software_versions=__version__,
            device_serial_number="0",
            series_description="Mandible segmentation (medimg)",
            content_label="MANDIBLE",
            content_description="Automatic mandible segmentation",
            # highdicom cannot drop every frame; say so explicitly instead of relying on its fallback.
            omit_empty_frames=bool(mask.any()),
        )
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise FormatError(expected("source CT images a DICOM SEG can reference (one series, with geometry and UIDs)", f"{type(error).__name__}: {error}")) from None

    with atomic_path(path, inputs=[*inputs, *source_files]) as temporary:
        segmentation.save_as(temporary)
    return path
