"""Root command: ``medimg <group> <command>``. Only parses options and mounts the groups.

Kept free of heavy imports (torch, scipy, skimage) so that ``medimg --help`` is instant;
commands import what they need when they run.
"""

from __future__ import annotations

import typer

from medimg import __version__
from medimg.acne.cli import app as acne_app
from medimg.common import console
from medimg.mandible.cli import app as mandible_app
from medimg.oct_glands.cli import app as oct_app

app = typer.Typer(
    name="medimg",
    help="Medical-imaging pipelines: fingertip OCT sweat glands, acne grading, mandible CT segmentation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(oct_app, name="oct")
app.add_typer(acne_app, name="acne")
app.add_typer(mandible_app, name="mandible")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"medimg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notes on stderr (errors and warnings still show)."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback when a command fails."),
) -> None:
    console.configure(quiet=quiet, debug=debug)


def main() -> None:
    app()
