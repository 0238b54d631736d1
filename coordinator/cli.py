"""``berth-coordinator`` command line: parse options, configure logging, serve."""

import asyncio
import logging
import os
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from coordinator.db import missing_driver
from coordinator.server import serve
from coordinator.settings import Settings, backup_paths_from_env, dependency_images_from_env
from shared.version import EXIT_FATAL, PACKAGE_VERSION


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter("use HOST:PORT, e.g. 127.0.0.1:7420")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.group()
@click.version_option(PACKAGE_VERSION, prog_name="berth-coordinator")
def main() -> None:
    """Berth coordinator: state, HTTP API and the agents' websocket hub."""


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/berth-coordinator"),
    show_default=True,
    help="Directory for the SQLite database and packages.",
)
@click.option("--listen", default="127.0.0.1:7420", show_default=True, help="HOST:PORT to bind.")
@click.option(
    "--public-url", default=None, help="URL agents and clients reach (e.g. behind a proxy)."
)
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True), default=None)
@click.option(
    "--join-token-ttl",
    type=int,
    default=3600,
    show_default=True,
    help="Seconds a join token stays valid.",
)
@click.option(
    "--edge-domain",
    default="localhost",
    show_default=True,
    help="Domain under which resources get generated hostnames.",
)
@click.option(
    "--raw-sample-retention-hours",
    type=float,
    default=24.0,
    show_default=True,
    help="Hours raw usage samples are kept (rollups are kept longer).",
)
@click.option(
    "--rollup-retention-days",
    type=float,
    default=35.0,
    show_default=True,
    help="Days five-minute and hour rollups are kept.",
)
@click.option(
    "--terminal-idle-seconds",
    type=float,
    default=900.0,
    show_default=True,
    help="Terminal sessions without input or output for this long are closed.",
)
@click.option(
    "--terminal-grace-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How long a dropped terminal client may reattach (with the recent output replayed).",
)
@click.option(
    "--archive-prune-grace-hours",
    type=float,
    default=24.0,
    show_default=True,
    help="Uploaded source archives no resource or deployment uses are removed after this long.",
)
@click.option(
    "--allow-private-webhook-targets",
    is_flag=True,
    envvar="BERTH_ALLOW_PRIVATE_WEBHOOK_TARGETS",
    help="Let webhooks reach loopback, private and link-local addresses (refused by default).",
)
@click.option(
    "--rate-limit-token",
    type=click.IntRange(min=0),
    default=1200,
    show_default=True,
    envvar="BERTH_RATE_LIMIT_TOKEN",
    help="Requests per minute per API token (0: unlimited).",
)
@click.option(
    "--rate-limit-anonymous",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    envvar="BERTH_RATE_LIMIT_ANONYMOUS",
    help="Requests per minute per client address without a token (0: unlimited).",
)
@click.option(
    "--rate-limit-bootstrap",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    envvar="BERTH_RATE_LIMIT_BOOTSTRAP",
    help="Bootstrap calls per minute per client address (0: unlimited).",
)
@click.option(
    "--rate-limit-enroll",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    envvar="BERTH_RATE_LIMIT_ENROLL",
    help="Agent enrollments per minute per client address (0: unlimited).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    envvar="BERTH_TRUSTED_PROXIES",
    help="Reverse proxy address or CIDR whose X-Forwarded-For names the client (repeatable).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a new connection has to send its request line and headers.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a JSON request body has to arrive.",
)
@click.option(
    "--max-unauthenticated-connections",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Connections that have not sent a request head yet; beyond it the oldest is closed.",
)
@click.option(
    "--dns-resolver",
    default=None,
    help="DNS server (IP or IP:PORT) for domain-binding checks; default: the system's.",
)
@click.option(
    "--notification-max-attempts",
    type=click.IntRange(1, 20),
    default=6,
    show_default=True,
    help="Attempts per notification delivery before it is marked failed.",
)
@click.option(
    "--notification-retry-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="Pause before a notification's second attempt (doubling after each failure).",
)
@click.option(
    "--server-offline-grace-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How long an agent may stay disconnected before server.offline is notified.",
)
@click.option(
    "--retention-prune-interval-seconds",
    type=float,
    default=3600.0,
    show_default=True,
    help="How often retention defaults are applied (the scheduled retention prune).",
)
@click.option(
    "--task-run-log-retention-days",
    type=click.IntRange(0, 36500),
    default=30,
    show_default=True,
    help="Built-in retention of task-run logs for organizations without a "
    "scheduled-task-run-logs policy (0: keep them).",
)
@click.option(
    "--session-idle-seconds",
    type=click.FloatRange(min=1),
    default=8 * 3600.0,
    show_default=True,
    help="Login sessions unused for this long end (docs/accounts.md).",
)
@click.option(
    "--session-absolute-seconds",
    type=click.FloatRange(min=1),
    default=7 * 24 * 3600.0,
    show_default=True,
    help="Login sessions end this long after login, used or not.",
)
@click.option(
    "--dns01-acme-directory",
    default="https://acme-v02.api.letsencrypt.org/directory",
    show_default=True,
    help="ACME directory the coordinator orders wildcard certificates from (docs/dns01.md).",
)
@click.option(
    "--dns01-acme-ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="PEM bundle to trust the ACME directory with (a private CA); default: the system's.",
)
@click.option("--dns01-acme-email", default=None, help="Contact e-mail of the ACME account.")
@click.option("--log-level", default="INFO", show_default=True)
def serve_command(
    data_dir: Path,
    listen: str,
    public_url: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    join_token_ttl: int,
    edge_domain: str,
    raw_sample_retention_hours: float,
    rollup_retention_days: float,
    terminal_idle_seconds: float,
    terminal_grace_seconds: float,
    archive_prune_grace_hours: float,
    allow_private_webhook_targets: bool,
    rate_limit_token: int,
    rate_limit_anonymous: int,
    rate_limit_bootstrap: int,
    rate_limit_enroll: int,
    trusted_proxies: tuple[str, ...],
    header_timeout: float,
    body_timeout: float,
    max_unauthenticated_connections: int,
    dns_resolver: str | None,
    notification_max_attempts: int,
    notification_retry_seconds: float,
    server_offline_grace_seconds: float,
    retention_prune_interval_seconds: float,
    task_run_log_retention_days: int,
    session_idle_seconds: float,
    session_absolute_seconds: float,
    dns01_acme_directory: str,
    dns01_acme_ca_bundle: str | None,
    dns01_acme_email: str | None,
    log_level: str,
) -> None:
    """Run the coordinator (SQLite under DATA_DIR unless BERTH_DATABASE_URL is set)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, port = _split_listen(listen)
    try:
        settings = Settings(
            data_dir=data_dir,
            host=host,
            port=port,
            database_url=os.environ.get("BERTH_DATABASE_URL") or None,
            public_url=public_url,
            tls_cert=tls_cert,
            tls_key=tls_key or tls_cert,
            join_token_ttl_seconds=join_token_ttl,
            edge_domain=edge_domain,
            raw_sample_retention_hours=raw_sample_retention_hours,
            rollup_retention_days=rollup_retention_days,
            terminal_idle_seconds=terminal_idle_seconds,
            terminal_grace_seconds=terminal_grace_seconds,
            archive_prune_grace_seconds=archive_prune_grace_hours * 3600,
            allow_private_webhook_targets=allow_private_webhook_targets,
            rate_limit_token_per_minute=rate_limit_token,
            rate_limit_anonymous_per_minute=rate_limit_anonymous,
            rate_limit_bootstrap_per_minute=rate_limit_bootstrap,
            rate_limit_enroll_per_minute=rate_limit_enroll,
            trusted_proxies=trusted_proxies,
            header_read_timeout_seconds=header_timeout,
            body_read_timeout_seconds=body_timeout,
            max_unauthenticated_connections=max_unauthenticated_connections,
            dns_resolver=dns_resolver,
            **dependency_images_from_env(),
            notification_max_attempts=notification_max_attempts,
            notification_retry_first_pause_seconds=notification_retry_seconds,
            server_offline_grace_seconds=server_offline_grace_seconds,
            retention_prune_interval_seconds=retention_prune_interval_seconds,
            task_run_log_retention_days=task_run_log_retention_days,
            session_idle_seconds=session_idle_seconds,
            session_absolute_seconds=session_absolute_seconds,
            dns01_acme_directory=dns01_acme_directory,
            dns01_acme_ca_bundle=dns01_acme_ca_bundle,
            dns01_acme_email=dns01_acme_email,
            **backup_paths_from_env(),
        )
    except ValidationError as exc:
        click.echo(f"berth-coordinator: invalid settings: {exc.errors()[0]['msg']}", err=True)
        sys.exit(EXIT_FATAL)
    if problem := missing_driver(settings.effective_database_url):
        click.echo(f"berth-coordinator: {problem}", err=True)
        sys.exit(EXIT_FATAL)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    asyncio.run(serve(settings))


serve_command.name = "serve"
