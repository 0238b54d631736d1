"""Samples list, request validation (400/404 envelopes) and retention prune."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from coordinator.db import models
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.ids import new_id
from coordinator.monitoring.rollups import roll_up_all
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, audit_events, problem_fields
from tests.unit.coordinator.test_monitoring_ingest import (
    connected_agent,
    container,
    make_resource,
    make_sample,
    service_of,
)
from tests.unit.coordinator.test_monitoring_rollups import store
from tests.unit.coordinator.test_projects_api import scoped_token


async def get(
    coordinator: Coordinator, token: str, path: str, **params: str
) -> tuple[int, Any, dict[str, str]]:
    """GET ``path`` with query ``params``."""
    return await coordinator.call("GET", f"{path}?{urlencode(params)}", token=token)


async def test_samples_list_for_server_and_resource(
    coordinator: Coordinator, admin_token: str
) -> None:
    ids = await make_resource(coordinator, admin_token, "list")
    agent = await connected_agent(coordinator, admin_token, "list-1")
    now = datetime.now(UTC)
    # 4 samples 5 s apart, then a 60 s gap, then the newest one just now.
    times = [now - timedelta(seconds=s) for s in (80, 75, 70, 65, 1)]
    samples = [
        make_sample(t, busy=float(i), sequence=i + 1, containers=[container(ids, 25.0 + i)])
        for i, t in enumerate(times)
    ]
    await store(agent, samples)
    window = {"window.from": (now - timedelta(minutes=5)).isoformat()}
    status, body, _ = await get(
        coordinator,
        admin_token,
        "/runtime-monitoring/samples",
        **{"scope.kind": "server", "scope.serverId": agent.server_id, "limit": "3"},
        **window,
    )
    assert status == 200, body
    assert body["schemaVersion"] == "runtime-monitoring.samples.list/v1"
    assert [s["sampleId"] for s in body["samples"]] == [s.sample_id for s in samples[2:]]
    assert body["freshness"] == "live"
    assert body["samples"][-1]["totals"]["cpu"]["busyPercent"] == 4.0
    assert body["samples"][-1]["totals"]["cpu"]["loadAverage1m"] == 0.5
    assert body["retention"]["rawRetentionHours"] == 24.0
    assert [w["code"] for w in body["warnings"]] == ["missing-samples"]

    status, body, _ = await get(
        coordinator,
        admin_token,
        "/runtime-monitoring/samples",
        scopeKind="resource",
        resourceId=ids["resourceId"],
        signals="cpu",
        **window,
    )
    assert status == 200, body
    assert len(body["samples"]) == 5
    first = body["samples"][0]
    assert first["totals"] == {
        "cpu": {
            "containerCpuPercent": 25.0,
            "logicalCores": None,
            "loadAverage1m": None,
            "loadAverage5m": None,
            "loadAverage15m": None,
            "busyPercent": None,
        },
        "memory": None,
        "disk": None,
        "inode": None,
        "docker": None,
        "network": None,
    }
    assert first["scopeEvidence"]["resourceId"] == ids["resourceId"]
    assert first["scopeEvidence"]["serverId"] == agent.server_id
    await agent.close()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"scope.kind": "server"}, "scope.serverId"),
        ({"scope.kind": "galaxy", "serverId": "x"}, "scope.kind"),
        ({"scope.kind": "all"}, "scope.kind"),
        ({"scopeKind": "server", "serverId": "SRV", "limit": "0"}, "limit"),
        ({"scopeKind": "server", "serverId": "SRV", "limit": "721"}, "limit"),
        ({"scopeKind": "server", "serverId": "SRV", "signals": "cpu,gpu"}, "signals"),
        (
            {
                "scopeKind": "server",
                "serverId": "SRV",
                "window.from": "2026-01-02T00:00:00Z",
                "window.to": "2026-01-01T00:00:00Z",
            },
            "window.from",
        ),
        (
            {
                "scopeKind": "server",
                "serverId": "SRV",
                "window.from": "2026-01-01T00:00:00Z",
                "window.to": "2026-03-01T00:00:00Z",
            },
            "window.from",
        ),
        ({"scopeKind": "server", "serverId": "SRV", "window.from": "yesterday"}, "window.from"),
        ({"scopeKind": "server", "serverId": "SRV", "colour": "red"}, "colour"),
    ],
)
async def test_samples_rejects_bad_requests(
    coordinator: Coordinator, admin_token: str, params: dict[str, str], field: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "bad-1")
    sent = {k: (agent.server_id if v == "SRV" else v) for k, v in params.items()}
    response = await get(coordinator, admin_token, "/runtime-monitoring/samples", **sent)
    error = assert_error(response, 400, "invalid_request")
    assert any(field in f for f in problem_fields(error)), error
    await agent.close()


async def test_rollup_rejects_bad_buckets_and_unknown_scopes(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "bad-2")
    server = {"scopeKind": "server", "serverId": agent.server_id}
    path = "/runtime-monitoring/rollup"
    assert_error(await get(coordinator, admin_token, path, **server), 400, "invalid_request")
    bad_bucket = await get(coordinator, admin_token, path, bucket="day", **server)
    assert_error(bad_bucket, 400, "invalid_request")
    old = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    minute_too_old = await get(
        coordinator, admin_token, path, bucket="minute", **{"window.from": old}, **server
    )
    error = assert_error(minute_too_old, 400, "invalid_request")
    assert "window.from" in problem_fields(error)
    too_many = await get(
        coordinator,
        admin_token,
        path,
        bucket="five-minute",  # 30 days of five-minute points is too many
        **{"window.from": (datetime.now(UTC) - timedelta(days=30)).isoformat()},
        **server,
    )
    assert_error(too_many, 400, "invalid_request")
    for kind in ("server", "project", "environment", "resource", "deployment"):
        missing = await get(
            coordinator, admin_token, path, bucket="hour", scopeKind=kind, **{f"{kind}Id": "x_1"}
        )
        assert_error(missing, 404, "not_found")
    await agent.close()


async def test_rollup_of_all_marks_the_organizations_deployments_only(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "marks-1")
    organization = await models.Organization.first()
    assert organization is not None
    now = datetime.now(UTC)
    ours, theirs = new_id("dep"), new_id("dep")
    for deployment_id, organization_id in ((ours, organization.id), (theirs, "org_other")):
        _ = await models.Deployment.create(
            id=deployment_id,
            organization_id=organization_id,
            project_id="prj_x",
            environment_id="env_x",
            resource_id="res_x",
            server_id=agent.server_id if organization_id == organization.id else "srv_other",
            status="succeeded",
            created_at=now - timedelta(minutes=5),
            finished_at=now - timedelta(minutes=4),
        )
    status, body, _ = await get(
        coordinator,
        admin_token,
        "/runtime-monitoring/rollup",
        bucket="hour",
        **{"scope.kind": "all", "window.from": (now - timedelta(hours=2)).isoformat()},
    )
    assert status == 200, body
    assert [m["deploymentId"] for m in body["deploymentMarkers"]] == [ours]
    await agent.close()


async def test_read_needs_permission_and_hides_other_servers(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "perm-1")
    other = await connected_agent(coordinator, admin_token, "perm-2")
    params = {"scopeKind": "server", "serverId": agent.server_id}
    no_read = await scoped_token(coordinator, admin_token, ["servers:read"])
    assert_error(
        await get(coordinator, no_read, "/runtime-monitoring/samples", **params), 403, "forbidden"
    )
    narrow = await scoped_token(
        coordinator,
        admin_token,
        ["runtime-monitoring:read"],
        deploymentTargetIds=[other.server_id],
    )
    hidden = await get(coordinator, narrow, "/runtime-monitoring/samples", **params)
    assert_error(hidden, 404, "not_found")
    await agent.close()
    await other.close()


async def test_prune_keeps_unrolled_samples_and_rollups_and_dry_run_deletes_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "prune-1")
    now = datetime.now(UTC)
    old = make_sample(now - timedelta(hours=30), sequence=1)
    fresh = make_sample(now - timedelta(minutes=1), sequence=2)
    await store(agent, [old, fresh])
    ancient = await SampleRollup.create(
        bucket="hour",
        bucket_start=now - timedelta(days=40),
        scope_kind="server",
        scope_id=agent.server_id,
        server_id=agent.server_id,
        sample_count=1,
        sums={"cpu.busyPercent": 1.0},
        maxima={"cpu.busyPercent": 1.0},
    )

    async def prune(**body: Any) -> dict[str, Any]:
        status, answer, _ = await coordinator.call(
            "POST", "/runtime-monitoring/prune", token=admin_token, json=body
        )
        assert status == 200, answer
        return dict(answer)

    # Not rolled up yet: the old sample is not even a candidate.
    dry = await prune()
    assert (dry["dryRun"], dry["matchedSampleCount"], dry["prunedSampleCount"]) == (True, 0, 0)
    assert (dry["matchedRollupCount"], dry["prunedRollupCount"]) == (1, 0)

    await roll_up_all(service_of(coordinator).rollup_lock)
    rollups_before = await SampleRollup.filter(server_id=agent.server_id).count()
    dry = await prune(dryRun=True)
    assert (dry["matchedSampleCount"], dry["prunedSampleCount"]) == (1, 0)
    assert await RuntimeSample.filter(server_id=agent.server_id).count() == 2
    assert await SampleRollup.filter(server_id=agent.server_id).count() == rollups_before

    real = await prune(dryRun=False)
    assert (real["matchedSampleCount"], real["prunedSampleCount"]) == (1, 1)
    assert (real["matchedRollupCount"], real["prunedRollupCount"]) == (1, 1)
    remaining = await RuntimeSample.filter(server_id=agent.server_id).values_list(
        "sample_id", flat=True
    )
    assert [str(r) for r in remaining] == [fresh.sample_id]
    assert not await SampleRollup.filter(id=ancient.id).exists()
    # The old sample's hour and five-minute rollups stay.
    assert await SampleRollup.filter(server_id=agent.server_id).count() == rollups_before - 1
    events = await audit_events(coordinator, admin_token, eventType="runtime-monitoring.pruned")
    assert len(events) == 1

    # An explicit ``before`` prunes the newer (rolled-up) sample too; rollups stay.
    real = await prune(dryRun=False, before=now.isoformat())
    assert real["prunedSampleCount"] == 1
    assert await SampleRollup.filter(server_id=agent.server_id).count() == rollups_before - 1
    await agent.close()
