"""Threshold policies: validation 400s, the non-flapping state machine, signed webhooks."""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tortoise.backends.base.client import BaseDBAsyncClient

from coordinator.db import models
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.ids import new_id
from coordinator.monitoring.threshold_rules import evaluate, next_rule_state
from coordinator.monitoring.thresholds import EVALUATOR_KEY, ThresholdEvaluator
from coordinator.monitoring.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    STATE_CHANGED_EVENT,
    TIMESTAMP_HEADER,
    Delivery,
    WebhookSender,
    verify,
)
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring
from shared.messages.monitoring import Sample, SampleBatch, SamplesAck
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, serving
from tests.unit.coordinator.support import assert_error, audit_events, problem_fields
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token

SECRET = "whsec-0123456789-abcdef"
_sequence = itertools.count(1)
GIB = 1024**3


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """The shared fixture's coordinator, allowed to call the loopback webhook receivers here."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        allow_private_webhook_targets=True,
    ) as harness:
        yield harness


def sample(
    *, busy: float = 5.0, used_bytes: int = GIB, containers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One wire sample (camelCase) with the given CPU busy percent and memory use."""
    number = next(_sequence)
    return {
        "sampleId": f"sample-{number:08d}-{id(containers)}",
        "sequence": number,
        "observedAt": datetime.now(UTC).isoformat(),
        "intervalSeconds": 10,
        "totals": {
            "cpu": {
                "logicalCores": 4,
                "loadAverage1M": 0.5,  # pydantic's to_camel spelling on the wire
                "loadAverage5M": 0.4,
                "loadAverage15M": 0.3,
                "busyPercent": busy,
                "containerCpuPercent": sum(c.get("cpuPercent", 0) for c in containers or []),
            },
            "memory": {
                "totalBytes": 4 * GIB,
                "usedBytes": used_bytes,
                "availableBytes": 4 * GIB - used_bytes,
                "containerUsedBytes": 0,
            },
            "disk": {
                "totalBytes": 100 * GIB,
                "usedBytes": 40 * GIB,
                "availableBytes": 60 * GIB,
                "attributedBytes": 0,
            },
            "inode": {"total": 1000, "used": 100, "available": 900},
        },
        "containers": containers or [],
    }


async def send_samples(agent: FakeAgent, *samples: dict[str, Any]) -> None:
    """Send one batch and wait for its ack (the samples are then stored)."""
    frame_id = agent.next_id()
    await agent.send(SampleBatch.model_validate({"id": frame_id, "samples": list(samples)}))
    while True:
        ack = await agent.expect(SamplesAck)
        if ack.re == frame_id:
            return


async def evaluated(
    coordinator: Coordinator, token: str, server_id: str, agent: FakeAgent, *samples: dict[str, Any]
) -> dict[str, Any]:
    """Send samples, wait until the policy evaluated the last one (observers run after the
    ack), and return the evaluation."""
    await send_samples(agent, *samples)
    seen: dict[str, Any] = {}

    async def done() -> bool:
        seen.update((await show(coordinator, token, server_id))["evaluation"])
        return bool(seen["sourceSampleId"] == samples[-1]["sampleId"])

    await eventually(done, what=f"evaluation of {samples[-1]['sampleId']}")
    return seen


async def set_policy(
    coordinator: Coordinator, token: str, body: dict[str, Any]
) -> tuple[int, Any, dict[str, str]]:
    """``POST /runtime-monitoring/thresholds``."""
    return await coordinator.call("POST", "/runtime-monitoring/thresholds", token=token, json=body)


def cpu_rule(warning: float = 70, critical: float = 90, **extra: Any) -> dict[str, Any]:
    """A host CPU busy rule."""
    return {
        "signal": "cpu",
        "metric": "busyPercent",
        "warning": warning,
        "critical": critical,
        **extra,
    }


async def show(coordinator: Coordinator, token: str, server_id: str) -> dict[str, Any]:
    """The ``runtime-monitoring-thresholds.show/v1`` of a server scope."""
    status, body, _ = await coordinator.call(
        "GET",
        f"/runtime-monitoring/thresholds?scope.kind=server&scope.serverId={server_id}",
        token=token,
    )
    assert status == 200, body
    return dict(body)


# ---- the state machine alone ----------------------------------------------------------------


def test_rule_state_moves_only_on_two_agreeing_samples() -> None:
    assert next_rule_state("ok", ["warning"]) == "ok"
    assert next_rule_state("ok", ["ok", "warning"]) == "ok"
    assert next_rule_state("ok", ["warning", "warning"]) == "warning"
    assert next_rule_state("ok", ["warning", "critical"]) == "warning"
    assert next_rule_state("ok", ["critical", "critical"]) == "critical"
    assert next_rule_state("critical", ["ok", "warning"]) == "warning"
    assert next_rule_state("critical", ["ok", "ok"]) == "ok"
    assert next_rule_state("warning", ["critical", "ok"]) == "warning"


def test_evaluate_spike_does_not_flip_and_recovery_needs_two() -> None:
    rules = [{"ruleId": "cpu", "comparator": "greater-than-or-equal", **cpu_rule()}]
    now = datetime.now(UTC)
    state: dict[str, Any] | None = None
    seen = []
    for busy in (10, 95, 10, 75, 80, 10, 72, 10, 10):
        state = evaluate(rules, state, {"cpu.busyPercent": busy}, sample_id="s", at=now)
        seen.append(state["state"])
    assert seen == [
        "ok",  # 10
        "ok",  # 95: a single spike
        "ok",  # 10
        "ok",  # 75: first warning sample
        "warning",  # 80: second one confirms
        "warning",  # 10: one calm sample is not a recovery
        "warning",  # 72
        "warning",  # 10
        "ok",  # 10: two calm samples recover
    ]
    assert state is not None
    assert state["crossed"] == []


def test_evaluate_less_than_rule_and_missing_metric() -> None:
    rules = [
        {
            "ruleId": "free",
            "signal": "memory",
            "metric": "availableBytes",
            "warning": 500,
            "critical": 100,
            "comparator": "less-than",
        }
    ]
    now = datetime.now(UTC)
    state = evaluate(rules, None, {"memory.availableBytes": 50}, sample_id="a", at=now)
    state = evaluate(rules, state, {}, sample_id="b", at=now)  # no reading: streak pauses
    assert state["state"] == "ok"
    assert state["sourceErrors"][0]["code"] == "metric-unavailable"
    state = evaluate(rules, state, {"memory.availableBytes": 60}, sample_id="c", at=now)
    assert state["state"] == "critical"
    assert state["crossed"] == [
        {
            "ruleId": "free",
            "signal": "memory",
            "metric": "availableBytes",
            "severity": "critical",
            "observedValue": 60,
            "boundary": 100,
        }
    ]


# ---- the API --------------------------------------------------------------------------------


async def test_invalid_policies_are_400(coordinator: Coordinator, admin_token: str) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    scope = {"kind": "server", "serverId": server["id"]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"scope": scope, "rules": [cpu_rule(metric="bogus")]}, "rules.0.metric"),
        ({"scope": scope, "rules": [cpu_rule(warning=90, critical=70)]}, "rules.0.critical"),
        (
            {
                "scope": scope,
                "rules": [cpu_rule(comparator="less-than", warning=10, critical=20)],
            },
            "rules.0.critical",
        ),
        ({"scope": scope, "rules": [cpu_rule(signal="gpu")]}, "rules.0.signal"),
        ({"scope": scope, "rules": []}, "rules"),
        ({"scope": scope, "rules": [cpu_rule(comparator="about")]}, "rules.0.comparator"),
        ({"scope": scope, "rules": [cpu_rule(), cpu_rule()]}, "rules.1.ruleId"),
        ({"scope": scope, "rules": [cpu_rule()], "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        error = assert_error(
            await set_policy(coordinator, admin_token, body), 400, "invalid_request"
        )
        assert field in problem_fields(error), (body, error)
    # Host metrics do not exist for a project: only its containers' sums do.
    project_id = await create_project(coordinator, admin_token, "shop")
    error = assert_error(
        await set_policy(
            coordinator,
            admin_token,
            {"scope": {"kind": "project", "projectId": project_id}, "rules": [cpu_rule()]},
        ),
        400,
        "invalid_request",
    )
    assert "rules.0.metric" in problem_fields(error)
    # A webhook URL needs a secret to sign with; a scope needs its id.
    assert_error(
        await set_policy(
            coordinator,
            admin_token,
            {"scope": scope, "rules": [cpu_rule()], "webhookUrl": "http://127.0.0.1:9/hook"},
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await set_policy(
            coordinator, admin_token, {"scope": {"kind": "server"}, "rules": [cpu_rule()]}
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await set_policy(
            coordinator,
            admin_token,
            {"scope": {"kind": "server", "serverId": "srv_missing"}, "rules": [cpu_rule()]},
        ),
        404,
        "not_found",
    )
    assert await ThresholdPolicy.all().count() == 0
    # Reads: no policy yet is 404, no scope is 400.
    assert_error(
        await coordinator.call(
            "GET",
            f"/runtime-monitoring/thresholds?scope.kind=server&scope.serverId={server['id']}",
            token=admin_token,
        ),
        404,
        "not_found",
    )
    assert_error(
        await coordinator.call("GET", "/runtime-monitoring/thresholds", token=admin_token),
        400,
        "invalid_request",
    )
    assert_error(
        await coordinator.call(
            "GET", "/runtime-monitoring/thresholds?scope.kind=planet", token=admin_token
        ),
        400,
        "invalid_request",
    )


async def test_policy_is_stored_masked_audited_and_replaced(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    body = {
        "scope": {"kind": "server", "serverId": server["id"]},
        "rules": [
            cpu_rule(ruleId="cpu-busy"),
            {"signal": "disk", "metric": "usedPercent", "warning": 80, "critical": 95},
        ],
        "webhookUrl": "https://hooks.example.com/berth",
        "webhookSecret": SECRET,
    }
    status, answer, _ = await set_policy(coordinator, admin_token, body)
    assert status == 200, answer
    policy = answer["policy"]
    assert policy["schemaVersion"] == "runtime-monitoring-thresholds.policy/v1"
    assert policy["webhookSecret"] == "****"
    assert [r["ruleId"] for r in policy["rules"]] == ["cpu-busy", "disk-usedPercent"]
    assert policy["rules"][1]["comparator"] == "greater-than-or-equal"
    assert policy["updatedByActorKind"] == "deploy-token"
    row = await ThresholdPolicy.get(id=policy["policyId"])
    assert row.webhook_secret_sealed is not None
    assert SECRET not in row.webhook_secret_sealed
    shown = await show(coordinator, admin_token, server["id"])
    assert shown["policy"] == policy
    assert shown["evaluation"]["state"] == "ok"
    assert shown["evaluation"]["sourceErrors"][0]["code"] == "no-samples"
    by_id = await coordinator.call(
        "GET", f"/runtime-monitoring/thresholds?policyId={policy['policyId']}", token=admin_token
    )
    assert by_id[0] == 200
    assert by_id[1]["policy"] == policy
    # Replacing keeps the id and the sealed secret when none is sent.
    body["rules"] = [cpu_rule(ruleId="cpu-busy", warning=50, critical=60)]
    del body["webhookSecret"]
    status, again, _ = await set_policy(coordinator, admin_token, body)
    assert status == 200, again
    assert again["policy"]["policyId"] == policy["policyId"]
    assert again["policy"]["webhookSecret"] == "****"
    assert (await ThresholdPolicy.get(id=policy["policyId"])).webhook_secret_sealed == (
        row.webhook_secret_sealed
    )
    events = [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"] == "runtime-monitoring.thresholds-set"
    ]
    assert len(events) == 2
    assert SECRET not in str(events)
    # Reading needs runtime-monitoring:read, writing runtime-monitoring:write.
    reader = await scoped_token(coordinator, admin_token, ["runtime-monitoring:read"])
    assert (await show(coordinator, reader, server["id"]))["policy"] == again["policy"]
    assert_error(await set_policy(coordinator, reader, body), 403, "forbidden")


# ---- evaluation from real ingest, and the webhook --------------------------------------------


@pytest.fixture
async def webhook_endpoint() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A local endpoint that fails its first call (to exercise the retry) then records calls."""
    received: list[tuple[dict[str, str], bytes]] = []
    calls = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=503)
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def test_ingest_drives_state_and_signed_webhook(
    coordinator: Coordinator,
    admin_token: str,
    webhook_endpoint: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = webhook_endpoint
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    status, answer, _ = await set_policy(
        coordinator,
        admin_token,
        {
            "scope": {"kind": "server", "serverId": agent.server_id},
            "rules": [
                cpu_rule(),
                {"signal": "memory", "metric": "usedPercent", "warning": 80, "critical": 95},
            ],
            "webhookUrl": url,
            "webhookSecret": SECRET,
        },
    )
    assert status == 200, answer
    server_id = agent.server_id
    await evaluated(coordinator, admin_token, server_id, agent, sample(busy=10))
    spike = await evaluated(coordinator, admin_token, server_id, agent, sample(busy=97))
    assert spike["state"] == "ok"
    evaluation = await evaluated(
        coordinator,
        admin_token,
        server_id,
        agent,
        sample(busy=20),
        sample(busy=92),
        sample(busy=93),
    )
    assert evaluation["state"] == "critical", evaluation
    assert evaluation["crossed"] == [
        {
            "ruleId": "cpu-busyPercent",
            "signal": "cpu",
            "metric": "busyPercent",
            "severity": "critical",
            "observedValue": 93.0,
            "boundary": 90.0,
        }
    ]
    assert "inspect-runtime-usage" in evaluation["nextActions"]

    async def delivered(count: int) -> bool:
        return len(received) >= count

    await eventually(lambda: delivered(1), what="webhook delivered")
    headers, raw = received[0]
    assert headers[EVENT_HEADER] == STATE_CHANGED_EVENT
    assert int(headers[TIMESTAMP_HEADER]) > 0
    assert verify(SECRET, raw, headers[SIGNATURE_HEADER])
    assert not verify("another-secret-value", raw, headers[SIGNATURE_HEADER])
    assert not verify(SECRET, raw + b" ", headers[SIGNATURE_HEADER])
    event = json.loads(raw)
    assert (event["previousState"], event["state"]) == ("ok", "critical")
    assert event["policyId"] == answer["policy"]["policyId"]
    assert SECRET not in raw.decode()

    # Memory at 90 % twice: warning on memory, still critical overall until CPU calms down.
    await evaluated(
        coordinator, admin_token, server_id, agent, sample(busy=5, used_bytes=int(3.6 * GIB))
    )
    evaluation = await evaluated(
        coordinator, admin_token, server_id, agent, sample(busy=5, used_bytes=int(3.6 * GIB))
    )
    assert evaluation["state"] == "warning", evaluation
    assert [c["ruleId"] for c in evaluation["crossed"]] == ["memory-usedPercent"]
    await eventually(lambda: delivered(2), what="second webhook")
    second = json.loads(received[1][1])
    assert (second["previousState"], second["state"]) == ("critical", "warning")
    await agent.close()


async def make_resource(coordinator: Coordinator, token: str) -> tuple[str, str, str]:
    """Project, environment (through the API) and a resource row; returns the three ids."""
    project_id = await create_project(coordinator, token, "shop")
    environment_id = await create_environment(coordinator, token, project_id, "production")
    resource = await models.Resource.create(
        id=new_id("res"),
        project_id=project_id,
        environment_id=environment_id,
        name="web",
        slug="web",
        created_at=datetime.now(UTC),
    )
    return project_id, environment_id, resource.id


def container(
    resource_id: str | None, cpu: float, memory: int = 64 * 1024**2, **labels: str
) -> dict[str, Any]:
    """A sampled container labelled with ``resource_id`` (and any other ``labels``)."""
    return {
        "containerId": f"c{next(_sequence):011d}",
        "name": "web",
        "resourceId": resource_id,
        "cpuPercent": cpu,
        "memoryBytes": memory,
        "writableBytes": 4096,
        **labels,
    }


async def resource_evaluation(
    coordinator: Coordinator, token: str, resource_id: str, sample_id: str
) -> dict[str, Any]:
    """Wait until the resource policy evaluated ``sample_id``; return the evaluation."""
    seen: dict[str, Any] = {}
    path = f"/runtime-monitoring/thresholds?scope.kind=resource&scope.resourceId={resource_id}"

    async def done() -> bool:
        status, body, _ = await coordinator.call("GET", path, token=token)
        assert status == 200, body
        seen.update(body["evaluation"])
        return bool(seen["sourceSampleId"] == sample_id)

    await eventually(done, what=f"resource evaluation of {sample_id}")
    return seen


async def test_resource_scope_sums_containers_and_disabled_policy_is_skipped(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    server_id = agent.server_id
    _, _, resource_id = await make_resource(coordinator, admin_token)
    server_body: dict[str, Any] = {
        "scope": {"kind": "server", "serverId": server_id},
        "rules": [cpu_rule()],
        "enabled": False,
    }
    assert (await set_policy(coordinator, admin_token, server_body))[0] == 200
    status, answer, _ = await set_policy(
        coordinator,
        admin_token,
        {
            "scope": {"kind": "resource", "resourceId": resource_id},
            "rules": [
                {"signal": "cpu", "metric": "containerCpuPercent", "warning": 100, "critical": 200}
            ],
        },
    )
    assert status == 200, answer
    # Two containers of the resource at 60 % each: 120 % together, warning twice. Another
    # container (unlabelled) does not count.
    hot = [
        sample(
            busy=99,
            containers=[
                container(resource_id, 60),
                container(resource_id, 60),
                container(None, 90),
            ],
        )
        for _ in range(2)
    ]
    await send_samples(agent, *hot)
    evaluation = await resource_evaluation(
        coordinator, admin_token, resource_id, hot[-1]["sampleId"]
    )
    assert evaluation["state"] == "warning", evaluation
    assert evaluation["crossed"][0]["observedValue"] == 120.0
    # The server policy is disabled: those busy samples were not evaluated for it.
    shown = await show(coordinator, admin_token, server_id)
    assert shown["evaluation"]["sourceSampleId"] is None
    assert shown["evaluation"]["state"] == "ok"
    await agent.close()


async def test_webhook_attempts_time_out_and_are_bounded() -> None:
    """A silent endpoint costs each attempt its timeout, and the event is dropped after the
    last attempt instead of being retried forever."""
    calls = 0
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sender = WebhookSender(
        attempts=3,
        timeout_seconds=0.2,
        first_pause_seconds=0.05,
        guard=OutboundGuard(allow_private=True),
    )
    try:
        async with sender.running():
            assert sender.submit(Delivery("whk_1", url, SECRET, STATE_CHANGED_EVENT, {"a": 1}))

            async def dropped() -> bool:
                return sender.dropped == 1

            await eventually(dropped, timeout=10, what="the delivery to be dropped")
        assert calls == 3
        assert sender.delivered == 0
        # Stopped: nothing is accepted any more (and nothing blocks).
        assert not sender.submit(Delivery("whk_2", url, SECRET, STATE_CHANGED_EVENT, {}))
    finally:
        release.set()
        await runner.cleanup()


# ---- attribution trust -----------------------------------------------------------------------


async def foreign_resource() -> tuple[str, str]:
    """A resource of ANOTHER organization (rows written directly); returns (project, resource)."""
    now = datetime.now(UTC)
    organization = await models.Organization.create(
        id=new_id("org"), name="other", slug="other", created_at=now
    )
    project = await models.Project.create(
        id=new_id("prj"), organization_id=organization.id, name="theirs", slug="theirs",
        created_at=now,
    )  # fmt: skip
    environment = await models.Environment.create(
        id=new_id("env"), project_id=project.id, name="production", created_at=now
    )
    resource = await models.Resource.create(
        id=new_id("res"), project_id=project.id, environment_id=environment.id, name="api",
        slug="api", created_at=now,
    )  # fmt: skip
    return project.id, resource.id


async def test_untrusted_containers_do_not_feed_scope_policies(
    coordinator: Coordinator, admin_token: str
) -> None:
    """A (compromised) agent labels containers with another tenant's resource, with a wrong
    project, or with a deployment that is not its resource's: none of them count."""
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    project_id, _, resource_id = await make_resource(coordinator, admin_token)
    their_project, their_resource = await foreign_resource()
    container_rule = {
        "signal": "cpu",
        "metric": "containerCpuPercent",
        "warning": 100,
        "critical": 200,
    }
    for kind, scope_id in (("resource", resource_id), ("project", project_id)):
        status, answer, _ = await set_policy(
            coordinator,
            admin_token,
            {"scope": {"kind": kind, f"{kind}Id": scope_id}, "rules": [container_rule]},
        )
        assert status == 200, answer
    # The other tenant's policy (its own API would create the same row).
    theirs = await ThresholdPolicy.create(
        id=new_id("thp"),
        scope_kind="resource",
        scope_id=their_resource,
        rules=[{"ruleId": "cpu", "comparator": "greater-than-or-equal", **container_rule}],
        enabled=True,
        evaluation=None,
        updated_at=datetime.now(UTC),
        updated_by_actor_id="usr_other",
        updated_by_actor_kind="user",
    )
    evaluator = coordinator._runner.app[EVALUATOR_KEY]  # type: ignore[union-attr]
    evaluator.policies_changed()
    hot = [
        sample(
            containers=[
                container(resource_id, 60),  # the only trusted one
                container(resource_id, 500, projectId=their_project),
                container(resource_id, 500, deploymentId="dep_not_of_this_resource"),
                container(their_resource, 500),
                container(their_resource, 500, projectId=project_id),
            ]
        )
        for _ in range(2)
    ]
    await send_samples(agent, *hot)
    evaluation = await resource_evaluation(
        coordinator, admin_token, resource_id, hot[-1]["sampleId"]
    )
    assert evaluation["state"] == "ok", evaluation  # 60 %, not 60 + 500 + 500
    status, shown, _ = await coordinator.call(
        "GET",
        f"/runtime-monitoring/thresholds?scope.kind=project&scope.projectId={project_id}",
        token=admin_token,
    )
    assert status == 200, shown
    assert shown["evaluation"]["sourceSampleId"] == hot[-1]["sampleId"]
    assert shown["evaluation"]["state"] == "ok", shown
    # Both samples were evaluated in the pass above: the foreign policy saw nothing.
    assert evaluator.live_evaluation(theirs.id) is None
    await evaluator.flush()
    assert (await ThresholdPolicy.get(id=theirs.id)).evaluation is None
    stored = await ThresholdPolicy.get(scope_kind="resource", scope_id=resource_id)
    written: dict[str, Any] = dict(stored.evaluation or {})
    rules = written["rules"]
    assert rules["cpu-containerCpuPercent"]["observedValue"] == 60.0
    await agent.close()


# ---- cost: policies in memory, newest samples only, writes on state changes -----------------


class QueryCount:
    """Statements sent to the database by one task (the app's background jobs run beside it)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.count = 0


@pytest.fixture
def query_count(monkeypatch: pytest.MonkeyPatch) -> QueryCount:
    """Counts the statements of ``QueryCount.task``, any dialect, in or out of a transaction."""
    counter = QueryCount()

    def counting(original: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if asyncio.current_task() is counter.task:
                counter.count += 1
            return await original(*args, **kwargs)

        return wrapper

    pending: list[type] = [BaseDBAsyncClient]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for name in ("execute_query", "execute_query_dict", "execute_many", "execute_insert"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, counting(vars(cls)[name]))
    return counter


def wire(busy: float) -> Sample:
    """One parsed sample, as the monitoring service hands it to observers."""
    return Sample.model_validate(sample(busy=busy))


async def test_evaluation_costs_no_query_until_a_state_changes(
    coordinator: Coordinator, admin_token: str, query_count: QueryCount
) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    silent = await coordinator.add_server(admin_token, "db-2")  # no policy
    policy = await ThresholdPolicy.create(
        id=new_id("thp"),
        scope_kind="server",
        scope_id=server["id"],
        rules=[{"ruleId": "cpu", "comparator": "greater-than-or-equal", **cpu_rule()}],
        enabled=True,
        evaluation=None,
        updated_at=datetime.now(UTC),
        updated_by_actor_id="usr_x",
        updated_by_actor_kind="user",
    )
    # An evaluator of its own, driven pass by pass (the app's one sees no samples here).
    evaluator = ThresholdEvaluator(Keyring.generate(), WebhookSender())

    query_count.task = asyncio.current_task()

    async def one_pass(server_id: str, *busy: float) -> int:
        before = query_count.count
        await evaluator.on_samples(server_id, [wire(b) for b in busy])
        await evaluator.evaluate_pending()
        return query_count.count - before

    async def stored() -> dict[str, Any]:
        return dict((await ThresholdPolicy.get(id=policy.id)).evaluation or {})

    assert await one_pass(server["id"], 10) > 0  # loads the policies, stores the first state
    first = await stored()
    assert first["state"] == "ok"
    # Calm samples move no state: nothing is written, the live evaluation moves on.
    assert await one_pass(server["id"], 12) == 0
    assert await one_pass(server["id"], 95) == 0  # a spike alone changes nothing
    assert await stored() == first
    live = evaluator.live_evaluation(policy.id)
    assert live is not None
    assert live["rules"]["cpu"]["recent"] == ["ok", "critical"]
    # A server without a policy is not even kept for the next pass.
    evaluated = evaluator.evaluated_samples
    assert await one_pass(silent["id"], 99, 99) == 0
    assert evaluator.evaluated_samples == evaluated
    # A backlog of five after a calm sample: only the newest two are compared (95 then 10),
    # so nothing changes (compared one by one, 95 and 95 would have made it critical).
    assert await one_pass(server["id"], 12) == 0
    assert await one_pass(server["id"], 95, 95, 95, 95, 10) == 0
    assert evaluator.evaluated_samples == evaluated + 3
    assert evaluator.superseded_samples == 3
    assert evaluator.live_evaluation(policy.id)["state"] == "ok"  # type: ignore[index]
    # Two critical samples: the state changes and is written at once.
    assert await one_pass(server["id"], 10, 92, 93) > 0
    assert (await stored())["state"] == "critical"
    # A policy change reloads the policies; the streak in memory, newer than the row, is kept.
    assert await one_pass(server["id"], 5) == 0
    evaluator.policies_changed()
    await evaluator.evaluate_pending()
    assert evaluator.live_evaluation(policy.id)["rules"]["cpu"]["recent"] == ["critical", "ok"]  # type: ignore[index]
    assert (await stored())["rules"]["cpu"]["recent"] == ["critical", "critical"]
    # The periodic flush writes the streak that moved since.
    await evaluator.flush()
    assert (await stored())["rules"]["cpu"]["recent"] == ["critical", "ok"]
    # A new evaluator (a restart) continues from the stored state and streak: one more calm
    # sample completes the recovery.
    restarted = ThresholdEvaluator(Keyring.generate(), WebhookSender())
    await restarted.on_samples(server["id"], [wire(6)])
    await restarted.evaluate_pending()
    assert restarted.live_evaluation(policy.id)["state"] == "ok"  # type: ignore[index]
    assert (await stored())["state"] == "ok"
