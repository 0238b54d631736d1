"""The agent's local configuration (environment, e.g. /etc/berth/agent.env), read in one place.

Things a remote API caller must not be able to change, such as whether host shells are allowed,
and the host's own wiring (Caddy's admin API, reconnect backoff, extra container labels). Every
``BERTH_AGENT_*`` variable is read here, once at start, and the object is passed on.
"""

import os
from dataclasses import dataclass, field
from typing import Final

from agent.edge_tls import ACME_CHALLENGES, DEFAULT_ACME_DIRECTORY, EdgeTls

MIN_SAMPLE_SECONDS: Final = 1.0
DEFAULT_EDGE_ADMIN_URL: Final = "http://127.0.0.1:2019"
DEFAULT_EDGE_LISTEN: Final = ":80"
DEFAULT_CADDY_DATA_DIR: Final = "/var/lib/caddy/.local/share/caddy"


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


def _text(name: str, default: str) -> str:
    # An empty value means the default, as before (``os.environ.get(name) or default``).
    return os.environ.get(name, "") or default


def parse_labels(raw: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2``; items without ``=`` or without a key are ignored."""
    labels: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key.strip():
            labels[key.strip()] = value.strip()
    return labels


def parse_challenges(raw: str) -> tuple[str, ...] | None:
    """Parse ``http-01,tls-alpn-01``; empty means the default (chosen by the HTTPS port)."""
    names = tuple(dict.fromkeys(item.strip().lower() for item in raw.split(",") if item.strip()))
    if not names:
        return None
    unknown = [name for name in names if name not in ACME_CHALLENGES]
    if unknown:
        raise SettingsError(
            f"BERTH_AGENT_ACME_CHALLENGES: unknown {', '.join(unknown)} "
            f"(choose from {', '.join(ACME_CHALLENGES)})"
        )
    return names


def parse_roots(raw: str, variable: str = "BERTH_AGENT_BIND_MOUNT_ROOTS") -> tuple[str, ...]:
    """Parse ``/srv/data:/mnt/shared`` (``:`` or ``,`` between absolute directories).

    Each root is resolved (symlinks followed) once here; ``/`` is refused, since it would
    allow the Docker socket and every secret on the host.
    """
    roots: list[str] = []
    for item in raw.replace(",", ":").split(":"):
        item = item.strip()
        if not item:
            continue
        if not item.startswith("/"):
            raise SettingsError(f"{variable}: {item!r} is not absolute")
        resolved = os.path.realpath(item)
        if resolved == "/":
            raise SettingsError(f"{variable} must not allow the whole host (/)")
        roots.append(resolved)
    return tuple(dict.fromkeys(roots))


@dataclass(frozen=True)
class AgentSettings:
    """Local agent settings, read once at start."""

    sample_seconds: float = 15.0
    spool_hours: float = 24.0
    allow_host_shell: bool = False
    terminal_idle_seconds: float = 3600.0
    reconnect_base_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    edge_admin_url: str = DEFAULT_EDGE_ADMIN_URL
    edge_listen: str = DEFAULT_EDGE_LISTEN
    # HTTPS for bound domains (tlsMode auto): off while empty.
    edge_tls_listen: str = ""
    acme_directory: str = DEFAULT_ACME_DIRECTORY
    acme_email: str = ""
    acme_ca_roots: str = ""
    acme_challenges: tuple[str, ...] | None = None
    # Caddy's data directory (its certificate storage) when its config names no storage root:
    # Debian's caddy user keeps it here.
    caddy_data_dir: str = DEFAULT_CADDY_DATA_DIR
    certificate_scan_seconds: float = 30.0
    # Put on every container the agent creates (tests and benches tag theirs for cleanup).
    extra_labels: dict[str, str] = field(default_factory=dict)
    # Host directories under which a deployment may bind-mount (none: bind mounts refused).
    bind_mount_roots: tuple[str, ...] = ()
    # Host directories under which server-directory backup targets may keep artifacts (none:
    # refused).
    backup_dirs: tuple[str, ...] = ()

    def edge_tls(self) -> EdgeTls | None:
        """HTTPS settings for the edge, or None while ``BERTH_AGENT_EDGE_TLS_LISTEN`` is unset."""
        if not self.edge_tls_listen:
            return None
        return EdgeTls(
            self.edge_tls_listen,
            self.acme_directory,
            self.acme_email,
            self.acme_ca_roots,
            self.acme_challenges,
        )

    @classmethod
    def from_env(cls) -> "AgentSettings":
        """Read ``BERTH_AGENT_*`` variables; raise ``SettingsError`` on a malformed value."""
        return cls(
            sample_seconds=_float("BERTH_AGENT_SAMPLE_SECONDS", 15.0, MIN_SAMPLE_SECONDS),
            spool_hours=_float("BERTH_AGENT_SPOOL_HOURS", 24.0, 1.0),
            allow_host_shell=_flag("BERTH_AGENT_ALLOW_HOST_SHELL"),
            terminal_idle_seconds=_float("BERTH_AGENT_TERMINAL_IDLE_SECONDS", 3600.0, 10.0),
            reconnect_base_seconds=_float("BERTH_AGENT_RECONNECT_BASE_SECONDS", 1.0, 0.0),
            reconnect_max_seconds=_float("BERTH_AGENT_RECONNECT_MAX_SECONDS", 60.0, 0.0),
            edge_admin_url=_text("BERTH_AGENT_EDGE_ADMIN_URL", DEFAULT_EDGE_ADMIN_URL),
            edge_listen=_text("BERTH_AGENT_EDGE_LISTEN", DEFAULT_EDGE_LISTEN),
            edge_tls_listen=os.environ.get("BERTH_AGENT_EDGE_TLS_LISTEN", "").strip(),
            acme_directory=_text("BERTH_AGENT_ACME_DIRECTORY", DEFAULT_ACME_DIRECTORY),
            acme_email=os.environ.get("BERTH_AGENT_ACME_EMAIL", "").strip(),
            acme_ca_roots=os.environ.get("BERTH_AGENT_ACME_CA_ROOTS", "").strip(),
            acme_challenges=parse_challenges(os.environ.get("BERTH_AGENT_ACME_CHALLENGES", "")),
            caddy_data_dir=_text("BERTH_AGENT_CADDY_DATA_DIR", DEFAULT_CADDY_DATA_DIR),
            certificate_scan_seconds=_float("BERTH_AGENT_CERTIFICATE_SCAN_SECONDS", 30.0, 1.0),
            extra_labels=parse_labels(os.environ.get("BERTH_AGENT_EXTRA_LABELS", "")),
            bind_mount_roots=parse_roots(os.environ.get("BERTH_AGENT_BIND_MOUNT_ROOTS", "")),
            backup_dirs=parse_roots(
                os.environ.get("BERTH_AGENT_BACKUP_DIRS", ""), "BERTH_AGENT_BACKUP_DIRS"
            ),
        )
