"""Application-level liveness: the agent's periodic heartbeat."""

from typing import Literal

from shared.wire import WireModel


class Heartbeat(WireModel):
    """Agent → coordinator, every ``Welcome.heartbeat_seconds``; refreshes ``lastSeenAt``.

    Protocol pings on both sides detect a dead socket; this message tells the coordinator the
    agent's own loop is alive, which a ping answered by the library alone would not.
    """

    type: Literal["heartbeat"] = "heartbeat"
    id: int
