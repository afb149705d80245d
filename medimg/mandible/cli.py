"""``medimg mandible``: the group is mounted now; its commands arrive with issue 5."""

import typer

app = typer.Typer(help="Head CT series -> mandible mask, mesh and statistics (commands arrive with issue 5).", no_args_is_help=True)
