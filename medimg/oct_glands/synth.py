"""``medimg oct synth``: a fingertip phantom written as the files a real scan and its truth would be."""

from __future__ import annotations

from pathlib import Path

from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.families import write_params
from medimg.common.tables import write_csv
from medimg.common.volumes import write_volume

TRUTH_PORE_COLUMNS = ("id", "x", "y", "z")


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"Y,Z,X"`` -> ``(Y, Z, X)``."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise OptionValueError(expected("--shape as three integers Y,Z,X", repr(text))) from None
    if len(shape) != 3:
        raise OptionValueError(expected("--shape as three integers Y,Z,X", repr(text)))
    return shape  # type: ignore[return-value]


def write_synthetic_scan(output: Path, *, shape: tuple[int, int, int], seed: int, style: str = "paper") -> list[Path]:
    """Write a phantom as the files of a real scan and its truth, plus the parameters that made it.

    Returns
    -------
    list of 4 Path
        ``OUT.tif`` (volume), ``OUT_glands.tif`` (labels), ``OUT_pores.csv`` (true pores) and
        ``OUT_params.json`` (the FingertipParams; ``render(read_params(path, FingertipParams))``
        gives the same volume and truth again).

    Raises
    ------
    InputError
        If ``output`` does not end in .tif or ``shape`` is not a usable phantom shape.

    ``style`` picks the family (:data:`medimg.oct_glands.phantom.STYLES`): ``paper`` (the phantoms
    the shipped network was trained on) or ``spec`` (ranges that include SPEC section 5's real
    scans: dark display, bright band, artefact rows, deep B-scans; Z >= 400).
    """
    from medimg.oct_glands.phantom import STYLE_MIN_DEPTH, STYLES, make_phantom

    if style not in STYLES:
        raise OptionValueError(expected(f"--style among {', '.join(STYLES)}", repr(style)))
    if shape[1] < STYLE_MIN_DEPTH[style]:
        raise OptionValueError(expected(f"--shape at least {STYLE_MIN_DEPTH[style]} deep (Z) for --style {style}", shape[1]))

    output = Path(output)
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(expected("an output path ending in .tif", f"'{output}'"))
    phantom = make_phantom(shape, seed=seed, family=STYLES[style])
    stem = output.with_suffix("")
    volume_path = write_volume(output, phantom.volume, metadata={"axes": "YZX", "synthetic_seed": seed, "style": style})
    glands_path = write_volume(stem.with_name(f"{stem.name}_glands.tif"), phantom.glands, metadata={"axes": "YZX"})
    rows = [{"id": i + 1, "x": x, "y": y, "z": z} for i, (x, y, z) in enumerate(phantom.pores)]
    pores_path = write_csv(stem.with_name(f"{stem.name}_pores.csv"), rows, TRUTH_PORE_COLUMNS)
    params_path = write_params(stem.with_name(f"{stem.name}_params.json"), phantom.params)
    return [volume_path, glands_path, pores_path, params_path]
