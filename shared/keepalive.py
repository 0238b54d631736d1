"""Kernel liveness for the agent link: TCP keepalive and TCP_USER_TIMEOUT on one socket.

A silent partition (dead router, suspended VM, firewall change) sends no FIN or RST, so neither
side's socket ever errors on its own. The kernel can notice instead, at no Python cost per idle
connection: keepalive probes an idle socket (nothing received for ``idle_seconds``), and the
user timeout ends a socket whose sent data stays unacknowledged. Both sides set the same
values, so each notices within about ``user_timeout_seconds`` (plus one probe interval when
idle), well inside the 45 s the project promises.
"""

import logging
import socket
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeepaliveSettings:
    """How quickly the kernel gives up on a silent peer (0 user timeout: kernel default)."""

    # Probing starts after this long without receiving anything; a live link that carries a
    # frame more often never probes at all.
    idle_seconds: int = 15
    # Several probes within the window, so a lossy (but alive) link does not lose them all.
    interval_seconds: int = 3
    count: int = 5
    # Sent data unacknowledged this long ends the socket; with keepalive on, Linux also uses
    # it as the deadline for unanswered probes (instead of ``count``).
    user_timeout_seconds: int = 30

    @property
    def detection_seconds(self) -> int:
        """The longest a silent partition stays unnoticed by this socket."""
        probes = self.idle_seconds + self.interval_seconds * self.count
        if self.user_timeout_seconds:
            # Unanswered probes: dropped at the first probe tick past the user timeout.
            probes = max(self.user_timeout_seconds, self.idle_seconds) + self.interval_seconds
        return max(probes, self.user_timeout_seconds)


DEFAULT_KEEPALIVE: Final = KeepaliveSettings()


def apply_keepalive(sock: socket.socket | None, settings: KeepaliveSettings) -> bool:
    """Turn on keepalive and the user timeout on a TCP ``sock``; return whether it worked.

    Options the platform lacks are skipped (macOS has no ``TCP_USER_TIMEOUT``); a socket that
    is not TCP (a Unix socket in tests) or already closed is left alone.
    """
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", settings.idle_seconds),
            ("TCP_KEEPINTVL", settings.interval_seconds),
            ("TCP_KEEPCNT", settings.count),
            ("TCP_USER_TIMEOUT", settings.user_timeout_seconds * 1000),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:
        logger.debug("could not set TCP keepalive options: %s", exc)
        return False
    return True
