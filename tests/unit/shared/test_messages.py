"""Wire messages: round trips, two-step decoding errors, id rules, schema snapshot."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import ErrorCode, IdReuse, InvalidMessage, NotFound, UnknownType
from shared.messages import (
    Challenge,
    CheckResult,
    ConnectivityCheck,
    ConnectivityReport,
    ErrorMessage,
    Heartbeat,
    Hello,
    HostFacts,
    IdGuard,
    IdSequence,
    Welcome,
    decode_agent_message,
    decode_coordinator_message,
)
from shared.schema import render
from shared.wire import WireModel, dump_json

FACTS = HostFacts(
    hostname="h",
    os="Debian 12",
    kernel="6.1",
    architecture="x86_64",
    cpu_count=2,
    memory_bytes=1 << 30,
    docker_version="24.0",
    python_version="3.11.7",
)

AGENT_SAMPLES: list[WireModel] = [
    Hello(id=1, server_id="srv_1", signature="c2ln", agent_version="0.1.0", facts=FACTS),
    Heartbeat(id=2),
    ConnectivityReport(
        id=3,
        re=7,
        checks=[CheckResult(name="docker-daemon", status="passed", message="ok", duration_ms=1.5)],
    ),
    ErrorMessage(id=4, re=None, error=NotFound("nope").to_body()),
]
COORDINATOR_SAMPLES: list[WireModel] = [
    Challenge(id=1, nonce="n" * 43, server_time=datetime(2026, 1, 1, tzinfo=UTC)),
    Welcome(id=2, re=1, server_id="srv_1", heartbeat_seconds=30, max_frame_bytes=1 << 20),
    ConnectivityCheck(id=3),
    ErrorMessage(id=4, re=9, error=InvalidMessage("bad").to_body()),
]


@pytest.mark.parametrize("message", AGENT_SAMPLES, ids=lambda m: type(m).__name__)
def test_agent_messages_round_trip(message: WireModel) -> None:
    assert decode_agent_message(dump_json(message)) == message


@pytest.mark.parametrize("message", COORDINATOR_SAMPLES, ids=lambda m: type(m).__name__)
def test_coordinator_messages_round_trip(message: WireModel) -> None:
    assert decode_coordinator_message(dump_json(message)) == message


def test_wire_fields_are_camel_case() -> None:
    raw = json.loads(dump_json(AGENT_SAMPLES[0]))
    assert set(raw) >= {"serverId", "agentVersion", "facts"}
    assert raw["facts"]["cpuCount"] == 2


def test_unknown_fields_are_ignored_for_additive_changes() -> None:
    raw = json.loads(dump_json(Heartbeat(id=5)))
    raw["fieldFromTheFuture"] = {"x": 1}
    assert decode_agent_message(json.dumps(raw)) == Heartbeat(id=5)


def test_direction_is_enforced() -> None:
    with pytest.raises(UnknownType):
        decode_agent_message(dump_json(ConnectivityCheck(id=1)))
    with pytest.raises(UnknownType):
        decode_coordinator_message(dump_json(Heartbeat(id=1)))


@pytest.mark.parametrize(
    ("frame", "error", "re"),
    [
        ("not json", InvalidMessage, None),
        ("[1, 2]", InvalidMessage, None),
        ('{"id": 1}', InvalidMessage, 1),
        ('{"type": "heartbeat"}', InvalidMessage, None),
        ('{"type": "heartbeat", "id": "1"}', InvalidMessage, None),
        ('{"type": "nope", "id": 4}', UnknownType, 4),
        ('{"type": "connectivity_report", "id": 5, "re": 1, "checks": "x"}', InvalidMessage, 5),
    ],
)
def test_bad_frames_raise_errors_that_point_back(
    frame: str, error: type[Exception], re: int | None
) -> None:
    with pytest.raises(error) as raised:
        decode_agent_message(frame)
    assert getattr(raised.value, "details", {}).get("re") == re


def test_validation_details_name_the_field() -> None:
    with pytest.raises(InvalidMessage) as raised:
        decode_agent_message('{"type": "connectivity_report", "id": 5, "re": 1, "checks": "x"}')
    problems = raised.value.details["problems"]
    assert problems[0]["loc"].startswith("connectivity_report")


def test_error_body_shape_is_stable() -> None:
    body = json.loads(dump_json(NotFound("gone", details={"id": "x"}).to_body()))
    assert body == {
        "code": "not_found",
        "message": "gone",
        "retriable": False,
        "details": {"id": "x"},
    }
    assert {c.value for c in ErrorCode} >= {"invalid_message", "unknown_type", "unauthorized"}


def test_ids_strictly_increase() -> None:
    sequence = IdSequence()
    assert [sequence.next() for _ in range(3)] == [1, 2, 3]
    guard = IdGuard()
    guard.accept(1)
    guard.accept(5)
    with pytest.raises(IdReuse):
        guard.accept(5)
    with pytest.raises(IdReuse):
        guard.accept(2)


def test_protocol_schema_snapshot_is_current() -> None:
    snapshot = Path(__file__).resolve().parents[3] / "docs" / "protocol-v1.schema.json"
    assert snapshot.read_text() == render(), (
        "docs/protocol-v1.schema.json is stale: run "
        "'python -m shared.schema > docs/protocol-v1.schema.json' and review the diff "
        "(changes within berth.v1 must be additive)"
    )
