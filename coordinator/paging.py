"""Cursor paging by id: a page of rows after a cursor, and the cursor of the next page."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

RowT = TypeVar("RowT", bound=Model)


@dataclass(frozen=True)
class Page(Generic[RowT]):
    """One page of rows, oldest id first; ``next_cursor`` is ``None`` on the last page."""

    items: list[RowT]
    next_cursor: str | None


async def page_after(rows: QuerySet[RowT], cursor: str | None, limit: int) -> Page[RowT]:
    """Up to ``limit`` rows with ids after ``cursor``, ordered by id.

    One extra row is read to learn whether another page follows, so the last page never
    hands out a cursor that leads to an empty one.
    """
    if cursor:
        rows = rows.filter(id__gt=cursor)
    found = await rows.order_by("id").limit(limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return Page(page, str(page[-1].pk) if more and page else None)


async def visible_page(
    rows: QuerySet[RowT],
    visible: Callable[[RowT], bool],
    cursor: str | None,
    limit: int,
    *,
    newest_first: bool = False,
) -> Page[RowT]:
    """Up to ``limit`` rows the caller may see, after ``cursor`` in id order (descending when
    ``newest_first``).

    Visibility is a per-row rule the query cannot express, so rows are read in a window of
    ``limit * 5 + 1`` and filtered here; a page may be short when the window is mostly hidden.
    """
    if cursor:
        rows = rows.filter(id__lt=cursor) if newest_first else rows.filter(id__gt=cursor)
    found: list[RowT] = []
    more = False
    for row in await rows.order_by("-id" if newest_first else "id").limit(limit * 5 + 1):
        if not visible(row):
            continue
        if len(found) == limit:
            more = True
            break
        found.append(row)
    return Page(found, str(found[-1].pk) if more and found else None)
