"""Agent link policy: backoff bounds, URL mapping, and which closes are fatal."""

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from agent.connection import (
    FatalError,
    ReconnectPolicy,
    TransientError,
    _classify_close,
    websocket_url,
)
from shared.version import CLOSE_REPLACED, CLOSE_UNAUTHORIZED, CLOSE_UNSUPPORTED_PROTOCOL


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = ReconnectPolicy(base_seconds=1, cap_seconds=60)
    for attempt, ceiling in [(0, 1), (1, 2), (3, 8), (5, 32), (6, 60), (40, 60)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays), (attempt, max(delays))
        # Full jitter: delays spread over the interval instead of clustering at the ceiling.
        assert min(delays) < ceiling * 0.25
        assert max(delays) > ceiling * 0.75


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:7420", "ws://127.0.0.1:7420/agent/v1/connect"),
        ("https://berth.example.com/", "wss://berth.example.com/agent/v1/connect"),
        ("https://example.com/berth", "wss://example.com/berth/agent/v1/connect"),
    ],
)
def test_websocket_url_keeps_scheme_security_and_prefix(base: str, expected: str) -> None:
    assert websocket_url(base) == expected


def test_websocket_url_rejects_other_schemes() -> None:
    with pytest.raises(FatalError):
        websocket_url("ftp://example.com")


@pytest.mark.parametrize(
    ("code", "fatal"),
    [
        (CLOSE_UNAUTHORIZED, True),
        (CLOSE_UNSUPPORTED_PROTOCOL, True),
        (CLOSE_REPLACED, False),
        (1001, False),
        (1011, False),
    ],
)
def test_close_codes_are_classified(code: int, fatal: bool) -> None:
    result = _classify_close(ConnectionClosedError(Close(code, "why"), None))
    assert isinstance(result, FatalError if fatal else TransientError)
    assert "why" in str(result)


def test_a_link_lost_without_a_close_frame_is_unreachable() -> None:
    # The socket died under us (keepalive, user timeout, ping timeout): probe for the heal.
    lost = _classify_close(ConnectionClosedError(None, None))
    assert isinstance(lost, TransientError)
    assert lost.unreachable
    # The coordinator said goodbye (restart, overload): the jittered backoff applies.
    closed = _classify_close(ConnectionClosedError(Close(1001, "going away"), None))
    assert isinstance(closed, TransientError)
    assert not closed.unreachable
