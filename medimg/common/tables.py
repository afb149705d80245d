"""Tabular results: JSON and CSV files, and the text a command prints on stdout."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from medimg.common.errors import FormatError, InputError, OptionValueError, expected
from medimg.common.outputs import write_text_atomic

OUTPUT_FORMATS = ("table", "json", "csv")


def _jsonable(value):
    """Plain JSON types; NaN and infinities (undefined metrics) become null, as JSON has no NaN."""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, tuple, dict)):
        value = value.item()  # numpy and torch scalars
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(obj) -> str:
    return json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"


def json_object(text: str) -> dict | None:
    """``text`` parsed as a JSON object; None when it is not JSON or not an object (the caller
    says what it expected)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path | str, obj, *, inputs: Iterable[Path] = ()) -> Path:
    return write_text_atomic(path, to_json(obj), inputs=inputs)


def read_json(path: Path | str) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing JSON file", f"'{path}' which does not exist"))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(expected("a JSON file", f"'{path.name}' ({error})")) from None


def records_to_csv(records: Sequence[dict], fieldnames: Sequence[str] | None = None) -> str:
    fieldnames = list(fieldnames or (records[0].keys() if records else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _format_cell(record.get(key)) for key in fieldnames})
    return buffer.getvalue()


def write_csv(path: Path | str, records: Sequence[dict], fieldnames: Sequence[str] | None = None, *, inputs: Iterable[Path] = ()) -> Path:
    return write_text_atomic(path, records_to_csv(records, fieldnames), inputs=inputs)


def read_csv(path: Path | str, *, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Read a CSV with a header; ``required`` columns must be present."""
    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing CSV file", f"'{path}' which does not exist"))
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        raise FormatError(expected("a CSV file", f"'{path.name}' ({error})")) from None
    missing = [column for column in required if column not in header]
    if missing:
        raise FormatError(expected(f"CSV columns {', '.join(required)}", f"header {header} in '{path.name}'"))
    return rows


def _format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "item") and callable(value.item):
        return _format_cell(value.item())
    return str(value)


def render_records(records: Sequence[dict], fmt: str = "table") -> str:
    """Text for stdout: an aligned plain table, JSON, or CSV."""
    if fmt == "json":
        return to_json(list(records)).rstrip("\n")
    if fmt == "csv":
        return records_to_csv(records).rstrip("\n")
    if fmt != "table":
        raise OptionValueError(expected(f"a format among {', '.join(OUTPUT_FORMATS)}", repr(fmt)))
    if not records:
        return ""
    columns = list(records[0].keys())
    cells = [[_format_cell(record.get(column)) for column in columns] for record in records]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
