"""The shared service helpers: cursor pages by id, and lookups within the caller's scope."""

from datetime import UTC, datetime

import pytest

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.lookup import get_server, visible_or_404
from coordinator.paging import page_after, visible_page
from coordinator.token_scope import Bounds
from shared.errors import NotFound
from tests.harness import Coordinator


def _principal(organization_id: str, server_ids: frozenset[str] = frozenset()) -> Principal:
    return Principal(
        kind="token",
        actor_id="tok_test",
        token_id="tok_test",
        organization_id=organization_id,
        permissions=frozenset({"*"}),
        server_ids=server_ids,
        bounds=Bounds.of({"permissions": ["*"]}, None),
    )


async def _servers(count: int) -> tuple[str, list[str]]:
    """An organization with ``count`` servers (ids sort in creation order)."""
    now = datetime.now(UTC)
    org = await models.Organization.create(id="org_paging", name="P", slug="p", created_at=now)
    ids = [f"srv_{i:02d}" for i in range(count)]
    for server_id in ids:
        _ = await models.Server.create(
            id=server_id, organization_id=org.id, name=server_id, created_at=now
        )
    return org.id, ids


@pytest.mark.parametrize(("rows", "limit"), [(4, 2), (5, 2), (3, 5), (0, 3)])
async def test_pages_cover_every_row_once_and_the_last_has_no_cursor(
    coordinator: Coordinator, rows: int, limit: int
) -> None:
    organization_id, ids = await _servers(rows)
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = await page_after(
            models.Server.filter(organization_id=organization_id), cursor, limit
        )
        seen += [row.id for row in page.items]
        sizes.append(len(page.items))
        if page.next_cursor is None:
            break
        assert page.next_cursor == page.items[-1].id
        cursor = page.next_cursor
    assert seen == ids
    # Only the last page may be short, and no page is empty unless there is nothing at all.
    assert all(size == limit for size in sizes[:-1])
    assert sizes[-1] > 0 or rows == 0
    assert len(sizes) == max(1, -(-rows // limit))


async def test_lookup_hides_other_organizations_and_rows_outside_the_scope(
    coordinator: Coordinator,
) -> None:
    organization_id, ids = await _servers(2)
    owner = _principal(organization_id)
    assert (await get_server(owner, ids[0])).id == ids[0]

    narrow = _principal(organization_id, server_ids=frozenset({ids[1]}))
    stranger = _principal("org_other")
    for actor, server_id in [(narrow, ids[0]), (stranger, ids[0]), (owner, "srv_missing")]:
        with pytest.raises(NotFound) as caught:
            _ = await get_server(actor, server_id)
        # Hidden and missing read the same: the message names only the id asked for.
        assert caught.value.message == f"server {server_id!r} not found"


async def test_visible_or_404_applies_both_the_filter_and_the_predicate(
    coordinator: Coordinator,
) -> None:
    organization_id, ids = await _servers(1)
    found = await visible_or_404(
        models.Server, "server", ids[0], lambda _: True, organization_id=organization_id
    )
    assert found.id == ids[0]
    with pytest.raises(NotFound):
        _ = await visible_or_404(models.Server, "server", ids[0], lambda _: False)
    with pytest.raises(NotFound):
        _ = await visible_or_404(
            models.Server, "server", ids[0], lambda _: True, organization_id="org_other"
        )


@pytest.mark.parametrize("newest_first", [False, True])
async def test_visible_pages_skip_hidden_rows_and_follow_the_order(
    coordinator: Coordinator, newest_first: bool
) -> None:
    organization_id, ids = await _servers(7)
    hidden = {ids[1], ids[4], ids[5]}
    expected = [i for i in (reversed(ids) if newest_first else ids) if i not in hidden]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await visible_page(
            models.Server.filter(organization_id=organization_id),
            lambda row: row.id not in hidden,
            cursor,
            2,
            newest_first=newest_first,
        )
        assert len(page.items) <= 2
        seen += [row.id for row in page.items]
        if page.next_cursor is None:
            break
        assert page.next_cursor == page.items[-1].id
        cursor = page.next_cursor
    assert seen == expected
