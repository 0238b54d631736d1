"""Agent dispatch with a fake runtime: one reply per request, errors as error frames."""

from pathlib import Path

from agent.dispatch import Dispatcher
from shared.errors import NotFound
from shared.messages import (
    AgentMessage,
    Challenge,
    ConnectivityCheck,
    ConnectivityReport,
    ErrorMessage,
    IdSequence,
)
from tests.fakes.runtime import FakeRuntime


class Outbox:
    """Collects what the dispatcher sends."""

    def __init__(self) -> None:
        self.sent: list[AgentMessage] = []

    async def send(self, message: AgentMessage) -> None:
        self.sent.append(message)


async def test_connectivity_check_reports_docker_and_state_dir(tmp_path: Path) -> None:
    outbox = Outbox()
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, IdSequence())
    await dispatcher.handle(ConnectivityCheck(id=7), outbox.send)
    [reply] = outbox.sent
    assert isinstance(reply, ConnectivityReport)
    assert reply.re == 7
    checks = {c.name: c for c in reply.checks}
    assert checks["docker-daemon"].status == "passed"
    assert checks["docker-daemon"].metadata["dockerVersion"] == "99.0-fake"
    assert checks["state-directory"].status == "passed"


async def test_connectivity_check_reports_failures(tmp_path: Path) -> None:
    outbox = Outbox()
    dispatcher = Dispatcher(FakeRuntime(available=False), tmp_path / "missing", IdSequence())
    await dispatcher.handle(ConnectivityCheck(id=1), outbox.send)
    [reply] = outbox.sent
    assert isinstance(reply, ConnectivityReport)
    assert {c.name: c.status for c in reply.checks} == {
        "docker-daemon": "failed",
        "state-directory": "failed",
    }


async def test_handshake_message_after_handshake_gets_error_frame(tmp_path: Path) -> None:
    outbox = Outbox()
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, IdSequence())
    challenge = Challenge.model_validate(
        {"id": 3, "nonce": "n" * 43, "serverTime": "2026-01-01T00:00:00Z"}
    )
    await dispatcher.handle(challenge, outbox.send)
    [reply] = outbox.sent
    assert isinstance(reply, ErrorMessage)
    assert reply.re == 3
    assert reply.error.code == "invalid_message"


async def test_error_frames_are_never_answered(tmp_path: Path) -> None:
    outbox = Outbox()
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, IdSequence())
    await dispatcher.handle(ErrorMessage(id=2, re=1, error=NotFound("x").to_body()), outbox.send)
    assert outbox.sent == []
