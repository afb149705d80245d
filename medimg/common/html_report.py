"""Self-contained HTML run reports: one file a person opens in any browser, offline.

A page never reaches the network: its style is one inline ``<style>``, every image is inlined as a
``data:`` URI (downscaled first, so a page of a hundred photos stays a few megabytes), there is no
JavaScript, and a Content-Security-Policy forbids loading anything else. Links are relative paths
only (a batch index points at each case's ``report.html``). Everything a user or a pipeline
provides (file names, notes, error messages) is escaped, so it shows as text.

A group builds its page from a :class:`Page` (``oct_glands.report_page``, ``acne.report_page``,
``mandible.report_page``); :func:`write_html` writes it atomically beside the run's other outputs.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import write_text_atomic

__all__ = ["MISSING", "Card", "Link", "Page", "batch_index_page", "failure_pairs", "format_value", "inline_image", "write_batch_index",
           "write_html"]

IMAGE_FORMATS = ("png", "jpeg")
#: longest edge of a photo card's thumbnail (px): sharp on a laptop screen, ~20-40 kB as JPEG
CARD_EDGE = 360
JPEG_QUALITY = 85
#: longest edge (screen px) a small figure is enlarged to, so a 160-pixel map is not a stamp
FIGURE_MIN_EDGE = 560
#: list items shown before "... and N more" (the JSON beside the page has them all)
LIST_ITEMS_SHOWN = 16
SIGNIFICANT_DIGITS = 4
INDEX_NAME = "index.html"
MISSING = "\u2014"  # an em dash: a value the run did not produce (None, an empty mask's box)

ImageSource = Path | str | bytes | np.ndarray
#: a batch failure: ``(input, message)``, or :class:`medimg.common.batch.Failure`
FailureLike = tuple[str, str] | object

# Images may only be data: URIs and styles inline; nothing else may load (fonts, scripts, frames).
_CONTENT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       font-size: 15px; line-height: 1.45; color: #1d2330; background: #f5f6f8; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; min-height: 100vh;
       box-shadow: 0 0 0 1px #e3e6eb; }
h1 { font-size: 1.6em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.2em; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e3e6eb; }
h3 { font-size: 1.05em; margin: 18px 0 8px; }
p.subtitle { color: #5b6473; margin: 0 0 12px; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 4px 0 12px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; vertical-align: top; padding: 5px 12px 5px 8px; border-bottom: 1px solid #e3e6eb;
         overflow-wrap: anywhere; }
thead th { background: #eef1f5; border-bottom: 2px solid #cfd5de; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
table.kv > tbody > tr > th { font-weight: 600; color: #3a4250; width: 14em; background: none; }
table.nested { margin: 0; font-size: 0.95em; }
table.nested th, table.nested td { padding: 2px 10px 2px 4px; border-bottom: 1px dotted #e3e6eb; }
td.number, th.number { text-align: right; }
tr.total th, tr.total td { font-weight: 700; border-top: 2px solid #cfd5de; }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #d5dae2; background: #000; display: block; }
figure img.enlarged { image-rendering: pixelated; }
figcaption { color: #5b6473; font-size: 0.92em; margin-top: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 16px; margin: 8px 0 20px; }
.card { border: 1px solid #d5dae2; border-radius: 6px; overflow: hidden; background: #fff; }
.card img { width: 100%; height: auto; display: block; background: #000; }
.card .no-image { height: 120px; display: flex; align-items: center; justify-content: center; color: #8a93a3;
                  background: #eef1f5; font-size: 0.9em; }
.card .body { padding: 8px 10px 10px; }
.card .line { margin: 1px 0; overflow-wrap: anywhere; }
.card .line:first-child { font-weight: 600; }
.card.flagged { border: 2px solid #c62828; }
.flag { display: inline-block; margin-top: 6px; padding: 2px 8px; border-radius: 4px; background: #c62828; color: #fff;
        font-weight: 700; font-size: 0.88em; }
.notes { border-left: 5px solid #e0a800; background: #fff8e1; padding: 10px 14px; margin: 12px 0 16px; }
.notes.failures { border-left-color: #c62828; background: #fdecea; }
.notes h3 { margin: 0 0 6px; }
.notes ul { margin: 0; padding-left: 20px; }
.ok { color: #2e7d32; font-weight: 600; }
details { margin: 6px 0 14px; }
summary { cursor: pointer; color: #3a4250; font-weight: 600; }
a { color: #1a56b8; }
footer { margin-top: 32px; color: #8a93a3; font-size: 0.85em; }
"""


@dataclass(frozen=True)
class Link:
    """A table cell or list item that links to a file beside the page.

    Attributes
    ----------
    text : what is shown
    href : a path relative to the page (``case1_oct/report.html``), never a URL; it is
        percent-encoded when rendered, so file names with spaces or ``#`` work
    """

    text: str
    href: str | Path


@dataclass(frozen=True)
class Card:
    """One tile of :meth:`Page.grid`: an image (or None: "no image"), lines of text, and an
    optional flag shown as a red badge (a photo that is not what the model expects).

    Attributes
    ----------
    image : anything :func:`inline_image` takes, or None
    lines : the first line is shown bold (a file name)
    flag : short warning text, or None
    title : hover text of the card (the full path when a line shows only the file name)
    """

    image: ImageSource | None
    lines: Sequence[str] = ()
    flag: str | None = None
    title: str | None = None


def _to_pillow(source: ImageSource):
    """A Pillow image of ``source``: files and bytes as 8-bit RGB with their EXIF orientation
    applied (as :func:`~medimg.common.images.read_image` reads photos), arrays as they are."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from medimg.common.images import _to_rgb8, read_image

    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or not (source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (3, 4))):
            raise InputError(expected("an (H, W), (H, W, 3) or (H, W, 4) uint8 image", f"{source.dtype} array of shape {source.shape}"))
        return Image.fromarray(source)
    if isinstance(source, (str, Path)):
        return Image.fromarray(read_image(source))
    if not isinstance(source, (bytes, bytearray)):
        raise InputError(expected("an image path, bytes or uint8 array", type(source).__name__))
    try:
        with Image.open(io.BytesIO(source)) as image:
            image.load()
            return Image.fromarray(_to_rgb8(ImageOps.exif_transpose(image), name="image bytes"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise FormatError(expected("readable image bytes (PNG, JPEG, TIFF, BMP)", str(error))) from None


def _image_for(image, fmt: str):
    """``image`` in a mode the format stores: JPEG has no alpha (composited on white)."""
    from PIL import Image

    if fmt == "jpeg" and image.mode == "RGBA":
        return Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return image


def inline_image(source: ImageSource, *, max_edge: int = 1024, fmt: str = "png") -> str:
    """An image as a ``data:`` URI, downscaled so its longest edge is at most ``max_edge``.

    Parameters
    ----------
    source : a file (path), its bytes, or an ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array
    max_edge : longest edge in pixels; a smaller image keeps its size (never enlarged)
    fmt : ``"png"`` (drawings, overlays with thin lines: lossless) or ``"jpeg"`` (photos:
        several times smaller; transparency is composited on white)

    Returns
    -------
    str
        ``data:image/png;base64,...`` or ``data:image/jpeg;base64,...``

    Raises
    ------
    InputError
        A missing file, an array that is not an 8-bit image, a bad ``fmt`` or ``max_edge``.
    FormatError
        A file or bytes that are not a readable image.
    """
    uri, _ = _encode(source, max_edge=max_edge, fmt=fmt)
    return uri


def _encode(source: ImageSource, *, max_edge: int, fmt: str) -> tuple[str, tuple[int, int]]:
    """The data URI and the (width, height) it decodes to."""
    from PIL import Image

    if fmt not in IMAGE_FORMATS:
        raise InputError(expected(f"an image format among {', '.join(IMAGE_FORMATS)}", repr(fmt)))
    if isinstance(max_edge, bool) or not isinstance(max_edge, int) or max_edge < 1:
        raise InputError(expected("a positive whole max_edge in pixels", repr(max_edge)))
    image = _image_for(_to_pillow(source), fmt)
    if max(image.size) > max_edge:
        image = image.copy()
        image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(buffer, format="PNG", optimize=True)
    return f"data:image/{fmt};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}", image.size


def _href(target: str | Path) -> str:
    """A path relative to the page, percent-encoded (so ``#``, ``?``, ``:`` and spaces in file
    names stay part of the path and no scheme can appear)."""
    text = target.as_posix() if isinstance(target, Path) else str(target)
    if not text or "://" in text or text.startswith(("/", "\\")):
        raise InputError(expected("a link relative to the page (a report is opened offline, moved with its folder)", repr(text)))
    return html.escape(quote(text, safe="/"), quote=True)


def format_value(value: object) -> str:
    """Plain text for one scalar: floats to 4 significant digits without an exponent for everyday
    magnitudes (``52345.6`` -> ``52350``, ``0.123456`` -> ``0.1235``), booleans as yes/no, None and
    NaN as an em dash. Not escaped (the caller escapes)."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return MISSING if math.isnan(value) else ("\u221e" if value > 0 else "-\u221e")
        if value == 0 or 1e-3 <= abs(value) < 1e15:
            return np.format_float_positional(value, precision=SIGNIFICANT_DIGITS, unique=False, fractional=False, trim="-")
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    if isinstance(value, Path):
        return value.as_posix()
    return str(value)


def _is_scalar(value: object) -> bool:
    return not isinstance(value, (Mapping, list, tuple, np.ndarray, Link))


def _cell(value: object) -> str:
    """One value as escaped HTML: scalars as text, flat lists on one line, dicts and lists of dicts
    as small nested tables."""
    if isinstance(value, Link):
        return f'<a href="{_href(value.href)}">{html.escape(value.text)}</a>'
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        if not value:
            return MISSING
        rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{_cell(item)}</td></tr>" for key, item in value.items())
        return f'<table class="nested"><tbody>{rows}</tbody></table>'
    if isinstance(value, (list, tuple)):
        if not value:
            return MISSING
        if all(isinstance(item, Mapping) for item in value):
            return _records_table(list(value), None, nested=True)
        shown = [html.escape(format_value(item)) if _is_scalar(item) else f"[{_cell(item)}]" for item in value[:LIST_ITEMS_SHOWN]]
        more = len(value) - len(shown)
        return ", ".join(shown) + (f" \u2026 and {more} more" if more > 0 else "")
    return html.escape(format_value(value))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _records_table(records: Sequence[Mapping], columns: Sequence[str] | None, *, nested: bool = False) -> str:
    if columns is None:
        columns = list(dict.fromkeys(key for record in records for key in record))
    def header(column: str) -> str:
        values = [record[column] for record in records if record.get(column) is not None]
        numeric = ' class="number"' if values and all(_is_number(value) for value in values) else ""
        return f"<th{numeric}>{html.escape(str(column))}</th>"

    head = "".join(header(column) for column in columns)
    body = []
    for record in records:
        cells = []
        for column in columns:
            value = record.get(column)
            numeric = ' class="number"' if _is_number(value) else ""
            cells.append(f"<td{numeric}>{_cell(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    kind = ' class="nested"' if nested else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _check_mapping(mapping: object, what: str) -> Mapping:
    if not isinstance(mapping, Mapping):
        raise InputError(expected(f"{what} as a mapping", type(mapping).__name__))
    return mapping


@dataclass
class Page:
    """An HTML page built top to bottom; :meth:`render` returns the whole document.

    Each method appends one block and returns the page, so calls may be chained. Text arguments
    are plain text (escaped here), never HTML.

    Attributes
    ----------
    title : the ``<h1>`` and the window title
    subtitle : one grey line under the title (the command, the version), or None
    """

    title: str
    subtitle: str | None = None
    blocks: list[str] = field(default_factory=list)

    def heading(self, text: str, *, level: int = 2) -> Page:
        if level not in (2, 3):
            raise InputError(expected("a heading level 2 or 3 (the title is level 1)", repr(level)))
        self.blocks.append(f"<h{level}>{html.escape(str(text))}</h{level}>")
        return self

    def paragraph(self, text: str) -> Page:
        self.blocks.append(f"<p>{html.escape(str(text))}</p>")
        return self

    def key_values(self, mapping: Mapping[str, object], *, folded: str | None = None) -> Page:
        """A two-column table, one row per key; nested dicts and lists are rendered as small
        tables and lists. ``folded``: put it behind a ``<details>`` toggle with that label (long
        option lists a reader seldom needs). An empty mapping adds nothing."""
        mapping = _check_mapping(mapping, "key-value pairs")
        if not mapping:
            return self
        rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{_cell(value)}</td></tr>" for key, value in mapping.items())
        block = f'<table class="kv"><tbody>{rows}</tbody></table>'
        if folded is not None:
            block = f"<details><summary>{html.escape(folded)}</summary>{block}</details>"
        self.blocks.append(block)
        return self

    def table(self, records: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> Page:
        """One row per record; ``columns`` (default: every key, in order of first appearance)
        picks and orders them; a missing value shows as an em dash; a :class:`Link` as a link."""
        records = [_check_mapping(record, "a table row") for record in records]
        if not records:
            self.blocks.append(f"<p>{MISSING}</p>")
            return self
        self.blocks.append(_records_table(records, columns))
        return self

    def figure(self, image: ImageSource, caption: str, *, max_edge: int = 1024, fmt: str = "png",
               enlarge_to: int = FIGURE_MIN_EDGE) -> Page:
        """An image inlined at most ``max_edge`` pixels on its longest edge, with a caption.

        A smaller image (a 160-pixel pore map) is shown enlarged so that its longest edge is
        ``enlarge_to`` screen pixels (at most ``max_edge``), with its pixels kept sharp; the
        inlined file keeps its own size.
        """
        uri, (width, height) = _encode(image, max_edge=max_edge, fmt=fmt)
        # Only an image smaller than it was asked to be is enlarged (one downscaled to max_edge is not).
        scale = max(1.0, min(enlarge_to, max_edge) / max(width, height)) if max(width, height) < max_edge else 1.0
        enlarged = ' class="enlarged"' if scale > 1.0 else ""
        caption = html.escape(str(caption))
        self.blocks.append(
            f'<figure><img{enlarged} src="{uri}" width="{round(width * scale)}" height="{round(height * scale)}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
        return self

    def grid(self, cards: Iterable[Card], *, max_edge: int = CARD_EDGE, fmt: str = "jpeg") -> Page:
        """Tiles of images with caption lines (one per photo), as many per row as fit."""
        tiles = []
        for card in cards:
            if card.image is None:
                picture = '<div class="no-image">no image</div>'
            else:
                uri, (width, height) = _encode(card.image, max_edge=max_edge, fmt=fmt)
                alt = html.escape(card.lines[0] if card.lines else "image")
                picture = f'<img src="{uri}" width="{width}" height="{height}" alt="{alt}">'
            lines = "".join(f'<div class="line">{html.escape(str(line))}</div>' for line in card.lines)
            flag = f'<div class="flag">{html.escape(card.flag)}</div>' if card.flag else ""
            title = f' title="{html.escape(card.title)}"' if card.title else ""
            kind = "card flagged" if card.flag else "card"
            tiles.append(f'<div class="{kind}"{title}>{picture}<div class="body">{lines}{flag}</div></div>')
        self.blocks.append(f'<div class="grid">{"".join(tiles)}</div>' if tiles else f"<p>{MISSING}</p>")
        return self

    def link_list(self, links: Iterable[Link]) -> Page:
        """A bulleted list of links to files beside the page."""
        items = "".join(f"<li>{_cell(link)}</li>" for link in links)
        if items:
            self.blocks.append(f"<ul>{items}</ul>")
        return self

    def notes(self, notes: Iterable[str], *, title: str = "Notes", failures: bool = False) -> Page:
        """A highlighted box of warnings a reader must see (yellow; red with ``failures``). Adds
        nothing when there are none."""
        items = "".join(f"<li>{html.escape(str(note))}</li>" for note in notes)
        if items:
            kind = "notes failures" if failures else "notes"
            self.blocks.append(f'<div class="{kind}"><h3>{html.escape(title)}</h3><ul>{items}</ul></div>')
        return self

    def failures(self, failures: Iterable[FailureLike]) -> Page:
        """The inputs a batch skipped, each with its error, in a red box; or "No failures."."""
        failures = failure_pairs(failures)
        if failures:
            noun = "input" if len(failures) == 1 else "inputs"
            self.notes([f"{name}: {message}" for name, message in failures], title=f"{len(failures)} {noun} failed", failures=True)
        else:
            self.blocks.append('<p class="ok">No failures.</p>')
        return self

    def stage_times(self, seconds_per_stage: Mapping[str, float]) -> Page:
        """Seconds per stage (in run order) with each one's share, and the total in the last row."""
        seconds_per_stage = _check_mapping(seconds_per_stage, "seconds per stage")
        for stage, seconds in seconds_per_stage.items():
            if not _is_number(seconds) or not math.isfinite(float(seconds)) or seconds < 0:
                raise InputError(expected("seconds per stage as non-negative numbers", f"{stage}: {seconds!r}"))
        total = round(sum(float(seconds) for seconds in seconds_per_stage.values()), 3)
        rows = []
        for stage, seconds in seconds_per_stage.items():
            share = f"{100.0 * float(seconds) / total:.0f}%" if total > 0 else MISSING
            rows.append(f'<tr><th>{html.escape(str(stage))}</th><td class="number">{_seconds(seconds)}</td>'
                        f'<td class="number">{share}</td></tr>')
        rows.append(f'<tr class="total"><th>total</th><td class="number">{_seconds(total)}</td><td class="number"></td></tr>')
        self.blocks.append('<table class="stages"><thead><tr><th>stage</th><th class="number">seconds</th>'
                           f'<th class="number">share</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
        return self

    def run_details(self, report: Mapping[str, object], *, model_fields: Sequence[str] = ()) -> Page:
        """The end of a run's page: a "Model" table of ``model_fields`` found in ``report`` (none:
        no table), the time per stage and the run's options (folded), each where the report has it."""
        model = {key: report[key] for key in model_fields if key in report}
        if model:
            self.heading("Model").key_values(model)
        if report.get("seconds_per_stage"):
            self.heading("Time per stage").stage_times(report["seconds_per_stage"])
        if report.get("options"):
            self.key_values(report["options"], folded="Options of the run")
        return self

    def render(self) -> str:
        from medimg import __version__

        title = html.escape(self.title)
        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        body = "\n".join(self.blocks)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CONTENT_POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{title}</h1>\n{subtitle}\n{body}\n"
            f"<footer>Written by medimg {html.escape(__version__)}. Self-contained: images are inlined, nothing is loaded "
            "from the network.</footer>\n</main>\n</body>\n</html>\n"
        )


def failure_pairs(failures: Iterable[FailureLike]) -> list[tuple[str, str]]:
    """``(input, message)`` of each failure, given as such pairs or as the batch runner's
    :class:`~medimg.common.batch.Failure` (anything with ``item`` and ``message``)."""
    pairs = []
    for failure in failures:
        if hasattr(failure, "item") and hasattr(failure, "message"):
            pairs.append((str(failure.item), str(failure.message)))
        elif isinstance(failure, (tuple, list)) and len(failure) == 2:
            pairs.append((str(failure[0]), str(failure[1])))
        else:
            raise InputError(expected("failures as (input, message) pairs or batch failures", repr(failure)))
    return pairs


def _seconds(seconds: float) -> str:
    """Seconds to the millisecond (what :class:`~medimg.common.clock.StageClock` keeps)."""
    return f"{float(seconds):.3f}"


def batch_index_page(title: str, cases: Sequence[Mapping[str, object]], failures: Sequence[FailureLike]) -> str:
    """The index of a batch run: one row per case linking to its own page, then the failures.

    Parameters
    ----------
    title : the page's title ("OCT extract: 12 scans")
    cases : one mapping per case that succeeded: ``name`` (shown), ``href`` (its ``report.html``
        relative to the index, or None when it has none), then any summary figures to show as
        further columns (``glands``, ``volume_ml``, ...), in order
    failures : (input name, error message) of each input the batch skipped (or the batch's
        :class:`~medimg.common.batch.Failure` objects)

    Returns
    -------
    str
        The whole HTML document.
    """
    rows = []
    for case in cases:
        case = _check_mapping(case, "a batch case")
        if "name" not in case:
            raise InputError(expected("a batch case with a 'name'", ", ".join(map(str, case)) or "no keys"))
        href = case.get("href")
        name = Link(str(case["name"]), href) if href is not None else str(case["name"])
        rows.append({"case": name, **{key: value for key, value in case.items() if key not in ("name", "href")}})
    failures = failure_pairs(failures)
    page = Page(title, subtitle=f"{len(rows)} succeeded, {len(failures)} failed")
    page.heading("Cases")
    page.table(rows)
    page.heading("Failures")
    page.failures(failures)
    return page.render()


def write_batch_index(output_dir: Path | str, title: str, cases: Sequence[tuple[str, Path | str | None, Mapping[str, object]]],
                      failures: Sequence[FailureLike], *, name: str = INDEX_NAME, inputs: Iterable[Path] = ()) -> Path:
    """Write :func:`batch_index_page` as ``output_dir/index.html``, each case linked relative to it.

    Parameters
    ----------
    output_dir : the batch's output folder (``-o``), where the index goes
    title : the page's title
    cases : ``(name, its report.html, summary figures)`` per case that succeeded; the path is
        absolute or relative to the working folder (as the pipeline wrote it), or None when the
        case has no page
    failures : ``(input, message)`` pairs or the batch's :class:`~medimg.common.batch.Failure` objects
    name : the index's file name
    inputs : files the index must not overwrite

    Returns
    -------
    Path
        The index written (atomically).
    """
    output_dir = Path(output_dir)
    rows = []
    for case_name, page, figures in cases:
        href = None if page is None else Path(os.path.relpath(Path(page).absolute(), output_dir.absolute())).as_posix()
        rows.append({"name": case_name, "href": href, **_check_mapping(figures, "a case's summary figures")})
    return write_html(output_dir / name, batch_index_page(title, rows, failures), inputs=inputs)


def write_html(path: Path | str, html_text: str, *, inputs: Iterable[Path] = ()) -> Path:
    """Write a page atomically (a reader never sees half of it), never over one of ``inputs``.

    Raises
    ------
    OutputError
        ``path`` is one of ``inputs``, or its folder is not writable.
    """
    if not isinstance(html_text, str):
        raise InputError(expected("the page as text", type(html_text).__name__))
    return write_text_atomic(path, html_text, inputs=inputs)
