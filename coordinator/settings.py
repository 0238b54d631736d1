"""Coordinator settings: command-line values with environment overrides, validated once."""

import ipaddress
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coordinator.domains.dns_check import parse_resolver


class Settings(BaseModel):
    """Everything the coordinator needs to start; immutable after start-up."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=7420, ge=0, le=65535)
    database_url: str | None = Field(
        default=None, description="tortoise DB URL; SQLite under data_dir when unset."
    )
    public_url: str | None = Field(
        default=None, description="URL agents and clients use (behind a reverse proxy: https://)."
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    join_token_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # Idle cost matters at 10k agents: one heartbeat frame a minute per agent, and no
    # coordinator pings by default (the agent pings, and silent sessions are swept, see below).
    agent_heartbeat_seconds: float = Field(default=60.0, gt=0)
    # Protocol pings from the coordinator; 0 disables them.
    ws_ping_seconds: float = Field(default=0.0, ge=0)
    # A session with no frame for this many heartbeat periods is closed (half-open sockets).
    stale_after_heartbeats: float = Field(default=3.0, ge=1.5)
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    # Slow clients (coordinator/connguard.py): a new connection must send its request head
    # within header_read_timeout_seconds, and at most max_unauthenticated_connections may be
    # waiting to (the oldest is closed beyond that); a JSON body must arrive within
    # body_read_timeout_seconds; an idle kept-alive connection closes after keepalive_seconds.
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_unauthenticated_connections: int = Field(default=1024, ge=1)
    keepalive_seconds: float = Field(default=75.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    agent_package_dir: Path | None = None
    # Suffix of generated edge hostnames: <resource>.<environment>.<project>.<edge_domain>.
    edge_domain: str = Field(
        default="localhost", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9.-]+$"
    )

    # Runtime monitoring: raw samples are kept this long; rollups (five-minute, hour) longer.
    raw_sample_retention_hours: float = Field(default=24.0, gt=0, le=24 * 365)
    rollup_retention_days: float = Field(default=35.0, gt=0, le=3650)
    # Terminal sessions: closed after this long without input or output; a dropped client may
    # reattach (and gets the recent output replayed) within the grace period.
    terminal_idle_seconds: float = Field(default=900.0, gt=0)
    terminal_grace_seconds: float = Field(default=60.0, gt=0)
    terminal_ticket_seconds: float = Field(default=60.0, gt=0, le=600)
    # Uploaded source archives no resource or deployment references are removed once older
    # than the grace period (which covers an upload whose row is not written yet, and pointing
    # a source back at a recent earlier archive); the pruning loop runs every interval.
    archive_prune_interval_seconds: float = Field(default=3600.0, gt=0)
    archive_prune_grace_seconds: float = Field(default=24 * 3600.0, ge=0)
    # Requests per minute (token buckets, burst = the same number); 0 switches a class off.
    # Generous per API token; tight per address for bootstrap and agent enrollment.
    rate_limit_token_per_minute: int = Field(default=1200, ge=0)
    rate_limit_anonymous_per_minute: int = Field(default=300, ge=0)
    rate_limit_bootstrap_per_minute: int = Field(default=10, ge=0)
    rate_limit_enroll_per_minute: int = Field(default=30, ge=0)
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()
    # Outbound webhooks may reach loopback/private/link-local addresses only when allowed.
    allow_private_webhook_targets: bool = False
    # DNS server (IP or IP:PORT) that domain-binding checks ask; None = the system's resolver.
    dns_resolver: str | None = None
    # Images dependency resources run, per kind (BERTH_DEPENDENCY_IMAGE_<KIND>); tests and
    # air-gapped servers point them at scripts/build-db-images.sh's local images.
    dependency_image_postgres: str = Field(default="postgres:16", min_length=1, max_length=512)
    dependency_image_redis: str = Field(default="redis:7", min_length=1, max_length=512)
    dependency_image_mysql: str = Field(default="mariadb:11", min_length=1, max_length=512)
    # Notifications (docs/notifications.md): a failed delivery is tried again after
    # first_pause * 2**(attempt-1) seconds, at most max_attempts times, each attempt bounded by
    # the timeout; an agent disconnected for the grace period is reported offline.
    notification_max_attempts: int = Field(default=6, ge=1, le=20)
    notification_retry_first_pause_seconds: float = Field(default=10.0, gt=0, le=3600)
    notification_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    server_offline_grace_seconds: float = Field(default=60.0, gt=0, le=24 * 3600)
    # How often the scheduled retention prune applies the retention defaults (docs/retention.md).
    retention_prune_interval_seconds: float = Field(default=3600.0, gt=0)
    # Task-run logs of organizations without a ``scheduled-task-run-logs`` policy are removed
    # this many days after their run finished (0: kept until a policy or the ledger prunes).
    task_run_log_retention_days: int = Field(default=30, ge=0, le=36500)
    # Login sessions (docs/accounts.md): ended after this long unused, and this long after login.
    session_idle_seconds: float = Field(default=8 * 3600.0, gt=0)
    session_absolute_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Wildcard certificates over DNS-01 (docs/dns01.md): the ACME directory the coordinator
    # orders from, a CA bundle to trust it with (a private CA such as Pebble; None: the system's),
    # the account e-mail, how long a published TXT may take to show, and how often the renewal
    # loop looks for certificates that are due.
    dns01_acme_directory: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory", min_length=8, max_length=500
    )
    dns01_acme_ca_bundle: str | None = None
    dns01_acme_email: str | None = Field(default=None, max_length=254)
    dns01_visible_within_seconds: float = Field(default=60.0, gt=0, le=3600)
    dns01_check_interval_seconds: float = Field(default=3600.0, gt=0)
    # Backups (docs/backups.md): the AES-256-GCM key every artifact is encrypted with (a file
    # the operator keeps; created under data_dir when unset and missing) and the directory of
    # the coordinator's own backup storage (BERTH_BACKUP_KEY_FILE, BERTH_BACKUP_DIR).
    backup_key_file: Path | None = None
    backup_dir: Path | None = None
    # How often due backup policies are looked for (their interval is in hours).
    backup_policy_poll_seconds: float = Field(default=60.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Each entry must be an address or a CIDR network; normalised to its network form."""
        try:
            return tuple(str(ipaddress.ip_network(v.strip(), strict=False)) for v in value)
        except ValueError as exc:
            raise ValueError(f"trusted proxy is not an address or CIDR network: {exc}") from exc

    @field_validator("dns_resolver")
    @classmethod
    def _resolver(cls, value: str | None) -> str | None:
        """``IP`` or ``IP:PORT`` (``[IPv6]:PORT``), checked at start-up rather than per lookup."""
        if value is not None:
            _ = parse_resolver(value)
        return value

    @property
    def effective_database_url(self) -> str:
        """Return the configured DB URL or the SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite://{self.data_dir / 'berth.sqlite3'}"

    def base_url(self, fallback: str) -> str:
        """Return the public URL, or ``fallback`` (derived from the request) when unset."""
        return (self.public_url or fallback).rstrip("/")


def dependency_images_from_env() -> dict[str, Any]:
    """``dependency_image_<kind>`` settings named by ``BERTH_DEPENDENCY_IMAGE_<KIND>``."""
    found: dict[str, str] = {}
    for kind in ("postgres", "redis", "mysql"):
        if value := os.environ.get(f"BERTH_DEPENDENCY_IMAGE_{kind.upper()}"):
            found[f"dependency_image_{kind}"] = value
    return found


def backup_paths_from_env() -> dict[str, Any]:
    """``backup_key_file`` and ``backup_dir`` named by ``BERTH_BACKUP_KEY_FILE`` / ``_DIR``."""
    found: dict[str, Path] = {}
    for name in ("key_file", "dir"):
        if value := os.environ.get(f"BERTH_BACKUP_{name.upper()}"):
            found[f"backup_{name}"] = Path(value)
    return found
