"""``POST /backup-targets`` with ``kind: server-directory`` against a real coordinator and
database: each kind's fields required and the other kind's refused, bad paths 400, another
organization's or an unknown server 404, an offline agent 503, and nothing stored by any of
them. A real agent allowing and refusing directories: tests/integration/test_dir_target_e2e.py."""

from datetime import UTC, datetime
from typing import Any

from coordinator.db import models
from coordinator.ids import new_id
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, database_dump


def _target(**changes: Any) -> dict[str, Any]:
    return {"name": "local", "kind": "server-directory", "path": "/srv/berth-backups", **changes}


async def test_bad_directory_targets_are_4xx_and_store_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, server, _ = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "dir-host"}
    )
    assert status == 201, server
    other = await models.Organization.create(
        id=new_id("org"), name="other", slug="other", created_at=datetime.now(UTC)
    )
    foreign = await models.Server.create(
        id=new_id("srv"), organization_id=other.id, name="theirs", created_at=datetime.now(UTC)
    )
    before = await database_dump(ignore={"last_used_at"})
    mine = server["id"]
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (_target(), 400, "invalid_request", "serverId"),
        (_target(serverId=mine, path=None), 400, "invalid_request", "path"),
        (_target(serverId=mine, bucket="berth"), 400, "invalid_request", "bucket"),
        (_target(kind="s3", serverId=mine), 400, "invalid_request", "endpointUrl"),
        (_target(serverId=mine, path="relative/dir"), 400, "invalid_request", "path"),
        (_target(serverId=mine, path="/srv/../etc"), 400, "invalid_request", "path"),
        (_target(serverId="srv_missing"), 404, "not_found", "serverId"),
        (_target(serverId=foreign.id), 404, "not_found", "serverId"),
        # No agent connected: it cannot say whether it allows the directory.
        (_target(serverId=mine), 503, "unavailable", "not connected"),
    ]
    for body, status, code, needle in cases:
        body = {k: v for k, v in body.items() if v is not None}
        error = assert_error(
            await coordinator.call("POST", "/backup-targets", token=admin_token, json=body),
            status,
            code,
        )
        assert needle in str(error), (body, error)
    assert await database_dump(ignore={"last_used_at"}) == before
