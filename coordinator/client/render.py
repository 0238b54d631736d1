"""Terminal output: rich tables for people (relative times), pretty raw JSON for ``--json``."""

import os
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from coordinator.client.http import JsonObject

Column = tuple[str, str]  # (header, dotted path into each item)

_TIMESTAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_STYLES: Final = {
    "online": "green", "active": "green", "healthy": "green", "passed": "green", "yes": "green",
    "never-connected": "yellow", "inactive": "yellow", "degraded": "yellow", "skipped": "dim",
    "offline": "red", "revoked": "red", "unreachable": "red", "failed": "red", "no": "red",
}  # fmt: skip
_UNITS: Final = ((365 * 86400, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


def print_json(data: object) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def lookup(data: object, path: str) -> object:
    """Follow a dotted path through nested objects; ``None`` where it leads nowhere."""
    for key in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def relative(moment: datetime, now: datetime | None = None) -> str:
    """Say how far ``moment`` is from now: ``3m ago``, ``in 2h``, ``just now``."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if abs(seconds) < 5:
        return "just now"
    size, unit = next((s, u) for s, u in _UNITS if abs(seconds) >= s)
    amount = f"{abs(seconds) // size}{unit}"
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


def parse_time(value: str) -> datetime | None:
    """Parse an API timestamp (ISO 8601); ``None`` for anything else."""
    if not _TIMESTAMP.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: str, *, absolute: bool = False) -> str:
    """Show a timestamp relative to now, optionally after the UTC time itself."""
    moment = parse_time(value)
    if moment is None:
        return value
    if not absolute:
        return relative(moment)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({relative(moment)})"


def cell(value: object, *, absolute: bool = False) -> Text:
    """Format one value as plain text (never rich markup), coloured when it is a status."""
    if value is None or value == []:
        shown = "-"
    elif isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, list):
        shown = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        shown = orjson.dumps(value).decode()
    elif isinstance(value, float):
        shown = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        shown = when(str(value), absolute=absolute)
    return Text(shown, style=_STYLES.get(shown, ""))


def _console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); wide when piped so rows stay greppable."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=200 if wide else None)


def console(*, stderr: bool = False) -> Console:
    """The console commands print rich output to (stderr keeps stdout clean for ``--json``)."""
    return _console(stderr=stderr)


def table(items: Sequence[JsonObject], columns: Sequence[Column], *, empty: str) -> None:
    """Print one row per item, or ``empty`` when there are none."""
    if not items:
        click.echo(empty)
        return
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header, _path in columns:
        grid.add_column(header, overflow="fold")
    for item in items:
        grid.add_row(*(cell(lookup(item, path)) for _header, path in columns))
    _console().print(grid)


def details(rows: Iterable[tuple[str, object]], *, title: str | None = None) -> None:
    """Print labelled values, one per line, with absolute and relative timestamps."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, cell(value, absolute=True))
    console = _console()
    if title:
        console.print(Text(title, style="bold underline"))
    console.print(grid)


def warn(message: str) -> None:
    """Print a warning on stderr."""
    _console(stderr=True).print(Text(message, style="yellow"))
