"""``berth notify list|add|test|deliveries`` and ``berth work list|show|retry|cancel``."""

import os
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

SUBSCRIPTION_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("CHANNEL", "channel"), ("EVENTS", "events"),
    ("ENABLED", "enabled"), ("TARGET", "url"),
)  # fmt: skip
DELIVERY_COLUMNS: Final = (
    ("ID", "id"), ("EVENT", "eventType"), ("STATUS", "status"), ("ATTEMPTS", "attemptCount"),
    ("CODE", "lastStatusCode"), ("ERROR", "errorCode"), ("NEXT", "nextAttemptAt"),
    ("CREATED", "createdAt"),
)  # fmt: skip
WORK_COLUMNS: Final = (
    ("ID", "id"), ("KIND", "kind"), ("OPERATION", "operationKey"), ("STATUS", "status"),
    ("PHASE", "phase"), ("STEP", "step"), ("ERROR", "errorCode"), ("NEXT", "nextActions"),
    ("UPDATED", "updatedAt"),
)  # fmt: skip
EVENTS: Final = (
    "deployment.succeeded",
    "deployment.failed",
    "server.offline",
    "runtime-monitoring.threshold-state-changed",
    "scheduled-task-run.succeeded",
    "scheduled-task-run.failed",
    "scheduled-task-run.timed-out",
    "certificate.issued",
    "certificate.renewed",
    "certificate.failed",
    "backup.succeeded",
    "backup.failed",
    "backup.verified",
    "backup.verification-failed",
    "restore.succeeded",
    "restore.failed",
)


@click.group()
def notify() -> None:
    """Notification subscriptions: signed webhooks, Slack, Discord, e-mail."""


@notify.command("list")
@click.pass_obj
def notify_list(opts: "Options") -> None:
    """List subscriptions."""
    data = opts.call(lambda api: api.get("/notification-subscriptions"))

    def human(data: JsonObject) -> None:
        empty = "No subscriptions: add one with 'berth notify add'."
        render.table(objects(data, "items"), SUBSCRIPTION_COLUMNS, empty=empty)

    opts.show(data, human)


@notify.command("add")
@click.argument("name")
@click.option(
    "--channel", type=click.Choice(["webhook", "slack", "discord", "email"]), default="webhook"
)
@click.option(
    "--event", "events", multiple=True, required=True, type=click.Choice(EVENTS),
    help="An event to be told about (repeat for several).",
)  # fmt: skip
@click.option("--url", help="Webhook, Slack or Discord URL.")
@click.option(
    "--signing-secret-env", metavar="VAR",
    help="Name of the environment variable holding the webhook signing secret (16+ chars).",
)  # fmt: skip
@click.option("--to", "recipients", multiple=True, help="E-mail recipient (repeat for several).")
@click.option("--from", "sender", help="E-mail sender address.")
@click.option("--smtp-host", help="SMTP relay host.")
@click.option("--smtp-port", type=int, default=587, show_default=True)
@click.option("--smtp-security", type=click.Choice(["starttls", "tls", "none"]), default="starttls")
@click.option("--smtp-user", help="SMTP user name.")
@click.option(
    "--smtp-password-env", metavar="VAR", help="Environment variable holding the SMTP password."
)
@click.pass_obj
def notify_add(
    opts: "Options",
    name: str,
    channel: str,
    events: tuple[str, ...],
    url: str | None,
    signing_secret_env: str | None,
    recipients: tuple[str, ...],
    sender: str | None,
    smtp_host: str | None,
    smtp_port: int,
    smtp_security: str,
    smtp_user: str | None,
    smtp_password_env: str | None,
) -> None:
    """Subscribe NAME to events. Secrets are read from environment variables, never from the
    command line (which other users can see)."""
    body: JsonObject = {"name": name, "channel": channel, "events": list(events)}
    if url:
        body["url"] = url
    if signing_secret_env:
        body["signingSecret"] = _from_env(signing_secret_env)
    if channel == "email":
        if not (recipients and sender and smtp_host):
            raise click.UsageError("an email subscription needs --to, --from and --smtp-host")
        smtp: JsonObject = {"host": smtp_host, "port": smtp_port, "security": smtp_security}
        if smtp_user:
            smtp["username"] = smtp_user
        if smtp_password_env:
            smtp["password"] = _from_env(smtp_password_env)
        body["email"] = {"to": list(recipients), "fromAddress": sender, "smtp": smtp}
    created = opts.call(lambda api: api.post("/notification-subscriptions", body))
    opts.show(created, lambda data: click.echo(f"Subscribed {name} ({text(data, 'id')})."))


def _from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise click.UsageError(f"environment variable {name} is not set")
    return value


@notify.command("test")
@click.argument("subscription_id")
@click.pass_obj
def notify_test(opts: "Options", subscription_id: str) -> None:
    """Queue a test notification to SUBSCRIPTION_ID (see 'berth notify deliveries')."""
    path = f"/notification-subscriptions/{segment(subscription_id)}/test"
    queued = opts.call(lambda api: api.post(path, {}))
    opts.show(queued, lambda data: click.echo(f"Queued delivery {text(data, 'deliveryId')}."))


@notify.command("deliveries")
@click.argument("subscription_id")
@click.option(
    "--status",
    type=click.Choice(
        ["pending", "retry-scheduled", "succeeded", "failed", "canceled", "dead-lettered"]
    ),
)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.pass_obj
def notify_deliveries(
    opts: "Options", subscription_id: str, status: str | None, limit: int
) -> None:
    """Show SUBSCRIPTION_ID's delivery log, newest first."""
    path = f"/notification-subscriptions/{segment(subscription_id)}/deliveries"
    data = opts.call(lambda api: api.get(path, {"status": status, "limit": limit}))

    def human(data: JsonObject) -> None:
        render.table(objects(data, "items"), DELIVERY_COLUMNS, empty="No deliveries yet.")

    opts.show(data, human)


@click.group()
def work() -> None:
    """The operator work ledger: Berth's background work, what failed, what to do next."""


@work.command("list")
@click.option(
    "--kind",
    type=click.Choice(
        ["deployment", "system", "runtime-maintenance", "certificate", "scheduled-task-run",
         "backup", "restore", "backup-verification"]
    ),
)  # fmt: skip
@click.option(
    "--status",
    type=click.Choice(
        ["pending", "running", "retry-scheduled", "succeeded", "failed", "canceled",
         "dead-lettered", "unknown"]
    ),
)  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.pass_obj
def work_list(opts: "Options", kind: str | None, status: str | None, limit: int) -> None:
    """List background work, most recently updated first."""
    query: dict[str, str | int | None] = {"kind": kind, "status": status, "limit": limit}
    data = opts.call(lambda api: api.get("/operator-work", query))

    def human(data: JsonObject) -> None:
        render.table(objects(data, "items"), WORK_COLUMNS, empty="No background work.")

    opts.show(data, human)


@work.command("retry")
@click.argument("work_id")
@click.pass_obj
def work_retry(opts: "Options", work_id: str) -> None:
    """Retry failed or canceled WORK_ID as a new work item."""
    path = f"/operator-work/{segment(work_id)}/retry"
    data = opts.call(lambda api: api.post(path, {}))
    opts.show(data, lambda d: click.echo(f"Retrying as {text(d, 'workId')}."))


@work.command("cancel")
@click.argument("work_id")
@click.option("--reason", help="Why (kept in the audit trail).")
@click.pass_obj
def work_cancel(opts: "Options", work_id: str, reason: str | None) -> None:
    """Cancel pending or running WORK_ID."""
    path = f"/operator-work/{segment(work_id)}/cancel"
    body: JsonObject = {"reason": reason} if reason else {}

    async def cancel(api: ApiClient) -> JsonObject:
        return await api.post(path, body)

    data = opts.call(cancel)
    opts.show(data, lambda d: click.echo(f"Canceled {text(d, 'workId')}."))


COMMANDS: Final = (notify, work)
