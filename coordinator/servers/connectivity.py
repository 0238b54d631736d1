"""Connectivity tests: a real round trip to a server's agent, with the agent's own checks."""

import time
from typing import Literal

from coordinator.hub.registry import Registry
from shared.errors import PlatformError
from shared.messages import CheckResult, ConnectivityCheck, ConnectivityReport

Health = Literal["healthy", "degraded", "unreachable"]


async def check(
    registry: Registry, server_id: str, timeout: float
) -> tuple[Health, list[CheckResult]]:
    """Check the link, time a request through it, and include the agent's own local checks."""
    session = registry.get(server_id)
    checks: list[CheckResult] = []
    status: Health
    if session is None:
        checks.append(
            CheckResult(
                name="agent-link",
                status="failed",
                duration_ms=0,
                message="the agent is not connected",
            )
        )
        checks.append(
            CheckResult(
                name="agent-round-trip", status="skipped", duration_ms=0, message="no link to test"
            )
        )
        status = "unreachable"
    else:
        checks.append(
            CheckResult(
                name="agent-link",
                status="passed",
                duration_ms=0,
                message=f"connected since {session.connected_at.isoformat()}",
                metadata={"agentVersion": session.agent_version or ""},
            )
        )
        started = time.perf_counter()
        try:
            reply = await session.request(lambda i: ConnectivityCheck(id=i), timeout)
        except PlatformError as exc:
            checks.append(
                CheckResult(
                    name="agent-round-trip",
                    status="failed",
                    duration_ms=(time.perf_counter() - started) * 1000,
                    message=exc.message,
                )
            )
            status = "unreachable"
        else:
            elapsed = (time.perf_counter() - started) * 1000
            checks.append(
                CheckResult(
                    name="agent-round-trip",
                    status="passed",
                    duration_ms=elapsed,
                    message="agent answered",
                )
            )
            if isinstance(reply, ConnectivityReport):
                checks.extend(reply.checks)
            status = "healthy" if all(c.status != "failed" for c in checks) else "degraded"
    return status, checks
