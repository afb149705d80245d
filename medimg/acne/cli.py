"""``medimg acne``: the group is mounted now; its commands arrive with issue 4."""

import typer

app = typer.Typer(help="Skin photo -> acne lesion count and severity grade (commands arrive with issue 4).", no_args_is_help=True)
