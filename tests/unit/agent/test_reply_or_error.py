"""The one error path of the agent's request handlers (dispatcher, deployments): exactly one
reply per request, a deliberate error as itself, anything else as an internal error."""

import logging

import pytest

from agent.features import reply_or_error
from shared.errors import NotFound
from shared.messages import AgentMessage, ErrorMessage


class Outbox:
    def __init__(self) -> None:
        self.sent: list[AgentMessage] = []

    async def send(self, message: AgentMessage) -> None:
        self.sent.append(message)


async def test_a_reply_that_succeeds_sends_no_error_frame() -> None:
    outbox = Outbox()
    done: list[str] = []

    async def reply() -> None:
        done.append("replied")

    await reply_or_error(3, "deploy_plan", reply(), outbox.send)
    assert (done, outbox.sent) == (["replied"], [])


async def test_a_platform_error_answers_the_frame_with_its_own_code() -> None:
    outbox = Outbox()

    async def reply() -> None:
        raise NotFound("no such deployment", details={"deploymentId": "dep_1"})

    await reply_or_error(4, "deploy_cancel", reply(), outbox.send)
    [frame] = outbox.sent
    assert isinstance(frame, ErrorMessage)
    assert (frame.re, frame.error.code, frame.error.message) == (
        4,
        "not_found",
        "no such deployment",
    )
    assert frame.error.details == {"deploymentId": "dep_1"}


async def test_an_unexpected_failure_is_logged_and_answered_as_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = Outbox()

    async def reply() -> None:
        raise RuntimeError("secret detail of the bug")

    with caplog.at_level(logging.ERROR):
        await reply_or_error(5, "runtime_control", reply(), outbox.send)
    [frame] = outbox.sent
    assert isinstance(frame, ErrorMessage)
    assert (frame.re, frame.error.code) == (5, "internal")
    assert "secret detail" not in frame.error.message
    assert "request 5 (runtime_control) failed" in caplog.text
