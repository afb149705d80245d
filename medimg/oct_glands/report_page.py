"""``report.html`` of ``oct extract``: the pore map, the B-scan overlays and the numbers of one scan,
in one self-contained page (:mod:`medimg.common.html_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from medimg.common.errors import InputError, expected
from medimg.common.html_report import Page
from medimg.common.report import COMMON_FIELDS

# The extract results a reader looks at first, with what they mean; any other result follows under its own name.
RESULT_LABELS = {
    "glands": "sweat glands (ducts) found",
    "pores": "pores",
    "gland_voxels": "gland voxels",
    "mask_voxels": "voxels above the threshold",
    "threshold": "probability threshold",
    "blocks": "blocks analysed",
    "tissue_levels": "tissue intensity levels",
}
MODEL_FIELDS = ("arch", "weights", "device", "medimg_version", "command")


def _volume_shape(shape: object) -> object:
    if isinstance(shape, (list, tuple)) and len(shape) == 3:
        y, z, x = shape
        return f"{y} \u00d7 {z} \u00d7 {x} (Y B-scans \u00d7 Z depth \u00d7 X)"
    return shape


def extract_page(summary: Mapping[str, object], *, fingerprint_png: Path | str, bscan_overlay_png: Path | str) -> str:
    """The page of one ``oct extract`` run.

    Parameters
    ----------
    summary : what ``summary.json`` holds (``RunReport.to_dict()``: the common fields and the
        results, flat); any key may be missing
    fingerprint_png : the en-face pore map (``fingerprint.png``)
    bscan_overlay_png : the B-scans with surface, ROI band and ducts drawn (``bscan_overlay.png``)

    Returns
    -------
    str
        The whole HTML document (write it with :func:`medimg.common.html_report.write_html`).
    """
    if not isinstance(summary, Mapping):
        raise InputError(expected("the extract summary as a mapping", type(summary).__name__))
    source = summary.get("input", "scan")
    subtitle = f"{summary.get('command', 'oct extract')} \u00b7 medimg {summary.get('medimg_version', '?')}"
    page = Page(f"OCT extract: {source}", subtitle=subtitle)
    page.notes(summary.get("notes") or [])

    results = {"volume shape": _volume_shape(summary["volume_shape_yzx"])} if "volume_shape_yzx" in summary else {}
    results.update({label: summary[key] for key, label in RESULT_LABELS.items() if key in summary})
    shown = set(RESULT_LABELS) | {"volume_shape_yzx"} | set(COMMON_FIELDS)
    results.update({key: value for key, value in summary.items() if key not in shown})
    page.heading("Results").key_values(results)

    page.heading("Pore map")
    page.figure(fingerprint_png, "En-face fingerprint (skin surface seen from above, ridges bright); each detected pore is ringed in red.")
    page.heading("B-scans")
    page.figure(bscan_overlay_png, "B-scans (depth down): skin surface in red, bottom of the analysed band in yellow, "
                                   "detected ducts in green.", max_edge=1400)

    return page.run_details(summary, model_fields=MODEL_FIELDS).render()
