"""``report.html`` of ``mandible segment``: the overlay montage, the mandible's volume and
surface, and how the series was read, in one self-contained page (:mod:`medimg.common.html_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.common.html_report import MISSING, Page, format_value
from medimg.common.report import COMMON_FIELDS

MM3_PER_ML = 1000.0
MODEL_FIELDS = ("arch", "weights", "device", "input_size", "medimg_version", "command")
# Shown in their own sections below; every other result goes to "Other results".
_VOLUME_KEYS = ("volume_ml", "volume_mm3", "voxels", "voxel_volume_mm3", "slice_range", "slice_range_z_mm", "bounding_box_mm")
_SERIES_KEYS = ("series_uid", "shape", "spacing_mm", "tilt_deg", "spacing_runs", "resampled_grid")
_SETTING_KEYS = ("threshold", "window", "largest_component_only")
_MESH_LABELS = {"vertices": "vertices", "faces": "triangles", "closed": "watertight (closed surface)",
                "smoothing_iterations": "smoothing iterations", "area_mm2": "surface area (mm\u00b2)",
                "volume_mm3": "enclosed volume (mm\u00b3)"}
_SHOWN = {*_VOLUME_KEYS, *_SERIES_KEYS, *_SETTING_KEYS, *MODEL_FIELDS, *COMMON_FIELDS, "mesh"}


def _times(values: object, unit: str = "") -> object:
    """``[a, b, c]`` as ``a × b × c`` (a shape, a spacing, a box size)."""
    if isinstance(values, (list, tuple)) and values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return " \u00d7 ".join(format_value(v) for v in values) + unit
    return values


def _volume(report: Mapping) -> dict:
    rows: dict[str, object] = {}
    volume_ml = report.get("volume_ml")
    if volume_ml is None and isinstance(report.get("volume_mm3"), (int, float)):
        volume_ml = report["volume_mm3"] / MM3_PER_ML
    if volume_ml is not None or "volume_mm3" in report:
        rows["volume (mL)"] = volume_ml
    for key, label in (("volume_mm3", "volume (mm\u00b3)"), ("voxels", "voxels"), ("voxel_volume_mm3", "voxel volume (mm\u00b3)")):
        if key in report:
            rows[label] = report[key]
    if "slice_range" in report:
        rows["slices holding mandible"] = _span(report["slice_range"])
    if "slice_range_z_mm" in report:
        rows["their z (mm)"] = _span(report["slice_range_z_mm"])
    box = report.get("bounding_box_mm")
    if isinstance(box, Mapping):
        space = f" ({box['space']})" if "space" in box else ""
        rows[f"bounding box size{space}"] = _times(box.get("size"), " mm")
        rows[f"bounding box from{space}"] = _times(box.get("min"), " mm")
        rows[f"bounding box to{space}"] = _times(box.get("max"), " mm")
    elif "bounding_box_mm" in report:
        rows["bounding box"] = MISSING  # an empty mask has none
    return rows


def _span(values: object) -> object:
    if isinstance(values, (list, tuple)) and len(values) == 2:
        return f"{format_value(values[0])} to {format_value(values[1])}"
    return values


def _series(report: Mapping) -> dict:
    labels = {"series_uid": "series UID", "shape": "volume shape (Z \u00d7 Y \u00d7 X)", "spacing_mm": "voxel spacing",
              "tilt_deg": "gantry tilt (degrees)", "spacing_runs": "slice spacing runs", "resampled_grid": "resampled to"}
    rows = {labels[key]: report[key] for key in _SERIES_KEYS if key in report}
    if "shape" in report:
        rows[labels["shape"]] = _times(report["shape"])
    if "spacing_mm" in report:
        rows[labels["spacing_mm"]] = _times(report["spacing_mm"], " mm")
    if report.get("resampled_grid") is None and "resampled_grid" in report:
        rows[labels["resampled_grid"]] = "not resampled (one slice spacing)"
    return rows


def _settings(report: Mapping) -> dict:
    rows: dict[str, object] = {}
    if "threshold" in report:
        rows["probability threshold"] = report["threshold"]
    window = report.get("window")
    if isinstance(window, Mapping):
        rows["CT window (HU)"] = f"level {format_value(window.get('level'))}, width {format_value(window.get('width'))}"
    if "largest_component_only" in report:
        rows["largest component only"] = report["largest_component_only"]
    rows.update({key: report[key] for key in MODEL_FIELDS if key in report})
    return rows


def segment_page(report: Mapping[str, object], *, overlay_png: Path | str | np.ndarray | None) -> str:
    """The page of one ``mandible segment`` run.

    Parameters
    ----------
    report : what ``report.json`` holds (``SegmentResult.report``: the common fields and the
        results, flat, with ``mesh`` when an STL was written); any key may be missing
    overlay_png : the overlay montage: its file (``overlay.png``), or the ``(H, W, 3)`` uint8
        image itself (:func:`~medimg.mandible.overlay.overlay_montage`) when no PNG is written, or
        None for none

    Returns
    -------
    str
        The whole HTML document (write it with :func:`medimg.common.html_report.write_html`).
    """
    if not isinstance(report, Mapping):
        raise InputError(expected("the segmentation report as a mapping", type(report).__name__))
    source = report.get("input", "series")
    page = Page(f"Mandible segmentation: {source}",
                subtitle=f"{report.get('command', 'mandible segment')} \u00b7 medimg {report.get('medimg_version', '?')}")
    page.notes(report.get("notes") or [])

    page.heading("Mandible").key_values(_volume(report))
    if overlay_png is not None:
        page.figure(overlay_png, "Axial CT slices spread over the mandible, with the segmentation in orange.", max_edge=1400)
    mesh = report.get("mesh")
    if isinstance(mesh, Mapping) and mesh:
        page.heading("Surface mesh (STL)").key_values({_MESH_LABELS.get(key, key): value for key, value in mesh.items()})

    page.heading("Series").key_values(_series(report))
    page.heading("Settings and model").key_values(_settings(report))
    others = {key: value for key, value in report.items() if key not in _SHOWN}
    if others:
        page.heading("Other results").key_values(others)
    return page.run_details(report).render()
