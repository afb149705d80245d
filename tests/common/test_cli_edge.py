import typer
from typer.testing import CliRunner

from medimg.cli import app as root_app
from medimg.common import console
from medimg.common.cli_edge import cli_command
from medimg.common.errors import FormatError

runner = CliRunner()


def _app_raising(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @cli_command
    def boom() -> None:
        raise error

    return app


def test_missing_file_gives_one_error_line_and_nothing_on_stdout(tmp_path):
    result = runner.invoke(root_app, ["oct", "extract", str(tmp_path / "missing.tif")])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: expected an existing OCT volume file")
    assert "Traceback" not in result.stderr


def test_typed_error_becomes_exit_1_with_its_message():
    result = runner.invoke(_app_raising(FormatError("expected a TIFF, got\na PNG")), [])
    assert result.exit_code == 1
    assert result.stderr == "Error: expected a TIFF, got a PNG\n"


def test_unexpected_exception_is_one_line_too():
    result = runner.invoke(_app_raising(ZeroDivisionError("division by zero")), [])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unexpected ZeroDivisionError: division by zero")
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_adds_the_traceback():
    console.configure(debug=True)
    result = runner.invoke(_app_raising(FormatError("bad file")), [])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().endswith("Error: bad file")


def test_keyboard_interrupt_exits_130():
    result = runner.invoke(_app_raising(KeyboardInterrupt()), [])
    assert result.exit_code == 130
    assert result.stderr == "Error: interrupted\n"


def test_bad_option_values_exit_2_like_typer_usage_errors(tmp_path):
    import numpy as np
    import tifffile

    from medimg.common.errors import OptionValueError, UnknownModelError

    assert runner.invoke(_app_raising(OptionValueError("expected YZX, got 'abc'")), []).exit_code == 2
    assert runner.invoke(_app_raising(UnknownModelError("expected a model among a, b, got 'c'")), []).exit_code == 2
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((4, 8, 6), np.uint8), photometric="minisblack")
    for arguments, message in (
        (["oct", "surface", str(tmp_path / "s.tif"), "--axes", "abc"], "expected --axes as a permutation of Y, Z, X"),
        (["oct", "extract", str(tmp_path / "s.tif"), "--model", "bogus"], "expected a model among"),
        (["oct", "extract", str(tmp_path / "s.tif"), "--device", "tpu"], "expected --device auto, cpu, cuda or cuda:N, got 'tpu'"),
    ):
        result = runner.invoke(root_app, arguments)
        assert result.exit_code == 2, (arguments, result.stderr)
        assert result.stderr.startswith(f"Error: {message}") and len(result.stderr.splitlines()) == 1


def test_library_warnings_become_one_line_notes_said_once():
    import logging
    import warnings

    import numpy as np

    app = typer.Typer()

    @app.command()
    @cli_command
    def noisy() -> None:
        with np.errstate(divide="warn"):
            np.float64(1.0) / np.zeros(2)
            np.float64(1.0) / np.zeros(2)  # the same warning again: said once
        warnings.warn("a library says\nsomething on two lines", UserWarning)
        logging.getLogger("tifffile").warning("TiffPage 3: truncated file")
        typer.echo("result")

    result = runner.invoke(app, [])
    assert result.exit_code == 0 and result.stdout == "result\n"
    assert result.stderr.splitlines() == [
        "Warning: divide by zero encountered in divide (RuntimeWarning)",
        "Warning: a library says something on two lines (UserWarning)",
        "Warning: tifffile: TiffPage 3: truncated file",
    ]
