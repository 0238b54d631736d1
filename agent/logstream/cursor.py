"""Stream cursors: opaque text naming, per container, the last line a client has seen.

Format (opaque to clients, URL- and SSE-id-safe): ``c1`` then ``.<id12>-<ts_ns>-<index>`` per
container, where ``index`` counts the lines of that container with the same ``ts_ns`` before
it (Docker timestamps can repeat). Resuming reads each container from ``since=<ts_ns>`` and
skips every line at or before its position, so nothing is repeated or lost.
"""

from typing import Final

from shared.errors import InvalidRequest

PREFIX: Final = "c1"
# Keeps a cursor well under the 2000-character field limit (~45 bytes per container).
MAX_CONTAINERS: Final = 40

Position = tuple[int, int]
"""``(ts_ns, index among lines with that ts_ns)`` of a container's last line."""


def encode(positions: dict[str, Position]) -> str:
    """The cursor for ``positions`` (container id12 -> position)."""
    return PREFIX + "".join(f".{cid}-{ts}-{index}" for cid, (ts, index) in positions.items())


def decode(cursor: str) -> dict[str, Position]:
    """Parse a cursor; raise ``InvalidRequest`` when it is not one this agent handed out."""
    parts = cursor.split(".")
    if parts[0] != PREFIX or len(parts) - 1 > MAX_CONTAINERS:
        raise InvalidRequest("the log cursor is not valid", details={"field": "cursor"})
    positions: dict[str, Position] = {}
    for part in parts[1:]:
        cid, _, rest = part.partition("-")
        ts, _, index = rest.partition("-")
        if not (cid.isalnum() and len(cid) <= 64 and ts.isdigit() and index.isdigit()):
            raise InvalidRequest("the log cursor is not valid", details={"field": "cursor"})
        positions[cid] = (int(ts), int(index))
    return positions


class PositionTracker:
    """Numbers lines with equal timestamps and builds each emitted line's cursor."""

    def __init__(self, start: dict[str, Position] | None = None) -> None:
        self.positions: dict[str, Position] = dict(start or {})

    def advance(self, cid: str, position: Position) -> str:
        """Record that ``cid``'s line at ``position`` was emitted; return its cursor."""
        positions = self.positions
        if cid not in positions and len(positions) >= MAX_CONTAINERS:
            del positions[next(iter(positions))]  # the oldest container no one resumes
        positions[cid] = position
        if len(positions) == 1:
            return f"{PREFIX}.{cid}-{position[0]}-{position[1]}"
        return encode(positions)


def since_for(position: Position) -> str:
    """Docker's ``since`` (seconds.nanoseconds) that includes ``position``'s whole timestamp.

    One nanosecond earlier so an inclusive or exclusive ``since`` both deliver every line with
    that exact time; the skip logic drops the ones already seen.
    """
    ts = max(position[0] - 1, 0)
    return f"{ts // 1_000_000_000}.{ts % 1_000_000_000:09d}"
