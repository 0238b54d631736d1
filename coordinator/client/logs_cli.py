"""`berth logs`: a resource's runtime logs, history or followed live."""

from typing import Final

import click

COMMANDS: Final[tuple[click.Command, ...]] = ()
