"""`berth terminal`: attach the local terminal to a server or resource session."""

from typing import Final

import click

COMMANDS: Final[tuple[click.Command, ...]] = ()
