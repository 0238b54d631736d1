"""``UtcTimestamp``: a query or body time in the reference's form (``...T..:..Z``) that is also
a real date, so ``2026-13-45T00:00Z`` is a 400, not a 500 where it is parsed."""

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, StringConstraints

PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z$"


def _real(value: str) -> str:
    _ = parse(value)  # ValueError: pydantic reports it as the field's problem
    return value


def parse(value: str) -> datetime:
    """The moment a checked ``UtcTimestamp`` names (timezone-aware, UTC)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


UtcTimestamp = Annotated[str, StringConstraints(pattern=PATTERN), AfterValidator(_real)]
