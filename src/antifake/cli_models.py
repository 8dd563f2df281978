"""``antifake models list | use NAME | reset``: choose between the shipped model and the
ones ``antifake train --install NAME`` put in the user models folder (:mod:`antifake.models`).
"""

from __future__ import annotations

import click

from antifake import models


@click.group("models")
def models_group() -> None:
    """Installed models: list them, select one, or go back to the shipped one."""


@models_group.command("list")
def models_list() -> None:
    """List the shipped model and the installed ones; * marks the selected one."""
    current = models.selected()
    click.echo(f"models folder: {models.models_dir()}")
    for name, files in models.list_models():
        mark = "*" if name == current else " "
        click.echo(f"{mark} {name}  ({', '.join(files)})")


@models_group.command("use")
@click.argument("name")
def models_use(name: str) -> None:
    """Select the installed model NAME (``shipped``: the package's own)."""
    try:
        models.use(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    click.echo(f"selected {name}")


@models_group.command("reset")
def models_reset() -> None:
    """Go back to the shipped model (installed models stay in the folder)."""
    models.reset()
    click.echo("selected shipped")


__all__ = ["models_group"]
