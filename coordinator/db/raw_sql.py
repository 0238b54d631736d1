"""Bind placeholders for hand-written SQL, in the spelling of the connection's dialect."""


def bind_marks(dialect: str, count: int) -> list[str]:
    """``count`` placeholders in bind order: ``?`` for SQLite, ``$1``, ``$2``... for PostgreSQL.

    Hand-written statements (multi-row inserts, IN lists of thousands of ids) are where the
    ORM's query building cost more than the database; this is the one place that knows how
    each dialect spells a bound value.
    """
    if dialect == "sqlite":
        return ["?"] * count
    return [f"${i}" for i in range(1, count + 1)]
