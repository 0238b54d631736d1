"""Agent dispatch with a fake runtime: one reply per request, errors as error frames."""

from pathlib import Path

from agent.dispatch import Dispatcher
from agent.features import LinkContext
from shared.errors import NotFound, PlatformError, Unavailable
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
    dispatcher = Dispatcher(FakeRuntime(), tmp_path)
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
    dispatcher = Dispatcher(FakeRuntime(available=False), tmp_path / "missing")
    await dispatcher.handle(ConnectivityCheck(id=1), outbox.send)
    [reply] = outbox.sent
    assert isinstance(reply, ConnectivityReport)
    assert {c.name: c.status for c in reply.checks} == {
        "docker-daemon": "failed",
        "state-directory": "failed",
    }


async def test_handshake_message_after_handshake_gets_error_frame(tmp_path: Path) -> None:
    outbox = Outbox()
    dispatcher = Dispatcher(FakeRuntime(), tmp_path)
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
    dispatcher = Dispatcher(FakeRuntime(), tmp_path)
    await dispatcher.handle(ErrorMessage(id=2, re=1, error=NotFound("x").to_body()), outbox.send)
    assert outbox.sent == []


class RefusalCatcher:
    """A feature that owns frame 41 and records refusals of it."""

    def __init__(self) -> None:
        self.refusals: list[tuple[int, str]] = []
        self.received: list[object] = []

    @property
    def message_types(self) -> frozenset[str]:
        return frozenset({"samples_ack"})

    @property
    def capabilities(self) -> list[str]:
        return []

    async def run(self) -> None:
        """Nothing to run."""

    async def attached(self, link: LinkContext) -> None:
        """Nothing to attach."""

    def detached(self, link: LinkContext) -> None:
        """Nothing to detach."""

    def receive(self, message: object, link: LinkContext) -> None:
        self.received.append(message)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        if re != 41:
            return False
        self.refusals.append((re, error.code))
        return True


async def test_an_error_frame_goes_to_the_feature_whose_frame_it_answers(tmp_path: Path) -> None:
    outbox = Outbox()
    feature = RefusalCatcher()
    link = LinkContext(send=outbox.send, ids=IdSequence())
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, features=[feature], link=link)
    body = Unavailable("behind; retry later").to_body()
    assert dispatcher.deliver(ErrorMessage(id=5, re=41, error=body))
    assert feature.refusals == [(41, "unavailable")]
    # Not a feature's frame, or no ``re``: left to ``handle``, which only logs it.
    assert not dispatcher.deliver(ErrorMessage(id=6, re=7, error=body))
    assert not dispatcher.deliver(ErrorMessage(id=7, re=None, error=body))
    assert feature.refusals == [(41, "unavailable")]
