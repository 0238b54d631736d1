"""`berth capacity`, `berth top`, `berth usage`: capacity and usage from the CLI."""

from typing import Final

import click

COMMANDS: Final[tuple[click.Command, ...]] = ()
