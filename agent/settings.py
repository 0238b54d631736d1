"""The agent's local configuration (environment, e.g. /etc/berth/agent.env): things a remote
API caller must not be able to change, such as whether host shells are allowed."""

import os
from dataclasses import dataclass
from typing import Final

MIN_SAMPLE_SECONDS: Final = 1.0


class SettingsError(ValueError):
    """An environment value is malformed."""


def _float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, not {value:g}")
    return value


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}")


@dataclass(frozen=True)
class AgentSettings:
    """Local agent settings, read once at start."""

    sample_seconds: float = 15.0
    spool_hours: float = 24.0
    allow_host_shell: bool = False
    terminal_idle_seconds: float = 3600.0

    @classmethod
    def from_env(cls) -> "AgentSettings":
        """Read ``BERTH_AGENT_*`` variables; raise ``SettingsError`` on a malformed value."""
        return cls(
            sample_seconds=_float("BERTH_AGENT_SAMPLE_SECONDS", 15.0, MIN_SAMPLE_SECONDS),
            spool_hours=_float("BERTH_AGENT_SPOOL_HOURS", 24.0, 1.0),
            allow_host_shell=_flag("BERTH_AGENT_ALLOW_HOST_SHELL"),
            terminal_idle_seconds=_float("BERTH_AGENT_TERMINAL_IDLE_SECONDS", 3600.0, 10.0),
        )
