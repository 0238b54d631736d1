"""Kernel liveness options on the agent link's sockets."""

import socket

import pytest

from shared.keepalive import DEFAULT_KEEPALIVE, KeepaliveSettings, apply_keepalive


def test_defaults_notice_a_silent_peer_within_45_s() -> None:
    assert DEFAULT_KEEPALIVE.detection_seconds <= 45
    # Several probes fit in the window, so one lost probe on a lossy link is no disconnect.
    assert DEFAULT_KEEPALIVE.user_timeout_seconds // DEFAULT_KEEPALIVE.interval_seconds >= 4


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_options_are_set_on_a_tcp_socket(family: socket.AddressFamily) -> None:
    settings = KeepaliveSettings(
        idle_seconds=11, interval_seconds=4, count=6, user_timeout_seconds=29
    )
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        assert apply_keepalive(sock, settings)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 11
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 4
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 6
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 29_000


def test_other_sockets_are_left_alone() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert not apply_keepalive(left, DEFAULT_KEEPALIVE)
    assert not apply_keepalive(None, DEFAULT_KEEPALIVE)
