"""The ``berth`` command line: log in, manage servers and API tokens, read the audit trail."""

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import quote

import click

from coordinator.client import (
    access_cli,
    account_cli,
    backup_targets_cli,
    certs_cli,
    db_backup_cli,
    db_cli,
    db_policy_cli,
    deploy_cli,
    dns01_cli,
    domains_cli,
    logs_cli,
    monitoring_cli,
    notify_cli,
    orgs_cli,
    render,
    tasks_cli,
    terminal_cli,
    volume_backup_cli,
    volume_policy_cli,
    volumes_cli,
    workspace_cli,
)
from coordinator.client.config import ConfigError, Target, normalize_url, resolve, save_login
from coordinator.client.http import ApiClient, ApiError, ClientError, JsonObject, objects, text
from coordinator.permissions import ALL_PERMISSIONS, PERMISSIONS as CATALOGUE
from shared.version import PACKAGE_VERSION

T = TypeVar("T")

# The catalogue itself: a dependency-free module, so the CLI loads none of the server.
PERMISSIONS: Final = (ALL_PERMISSIONS, *CATALOGUE)
SERVER_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("HOST", "host"), ("LIFECYCLE", "lifecycleStatus"),
    ("AGENT", "agent.status"), ("VERSION", "agent.version"), ("LAST SEEN", "agent.lastSeenAt"),
)  # fmt: skip
SERVER_ROWS: Final = (
    ("ID", "id"), ("Name", "name"), ("Host", "host"), ("Lifecycle", "lifecycleStatus"),
    ("Deactivated", "deactivatedAt"), ("Reason", "deactivationReason"),
    ("Agent", "agent.status"), ("Agent version", "agent.version"),
    ("Last seen", "agent.lastSeenAt"), ("Connected", "agent.connectedAt"),
    ("Enrolled", "agent.enrolledAt"), ("Key", "agent.keyFingerprint"), ("Created", "createdAt"),
)  # fmt: skip
TOKEN_COLUMNS: Final = (
    ("ID", "tokenId"), ("NAME", "displayName"), ("STATUS", "status"),
    ("ENDS WITH", "secretSuffix"), ("PERMISSIONS", "scope.permissions"),
    ("SERVERS", "scope.deploymentTargetIds"), ("EXPIRES", "expiresAt"),
    ("LAST USED", "lastUsedAt"), ("CREATED", "createdAt"),
)  # fmt: skip
TOKEN_ROWS: Final = (
    ("ID", "tokenId"), ("Name", "displayName"), ("Status", "status"),
    ("Ends with", "secretSuffix"), ("Permissions", "scope.permissions"),
    ("Servers", "scope.deploymentTargetIds"), ("Created", "createdAt"), ("Expires", "expiresAt"),
    ("Last used", "lastUsedAt"), ("Rotated", "rotatedAt"), ("Revoked", "revokedAt"),
)  # fmt: skip
CHECK_COLUMNS: Final = (
    ("CHECK", "name"), ("STATUS", "status"), ("MS", "durationMs"), ("MESSAGE", "message"),
)  # fmt: skip
AUDIT_COLUMNS: Final = (
    ("ID", "id"), ("WHEN", "occurredAt"), ("EVENT", "eventType"), ("ON", "aggregateType"),
    ("AGGREGATE", "aggregateId"), ("BY", "actorKind"), ("ACTOR", "actorId"),
)  # fmt: skip
BLOCKER_COLUMNS: Final = (
    ("KIND", "kind"), ("ENTITY", "relatedEntityId"), ("TYPE", "relatedEntityType"),
    ("COUNT", "count"),
)  # fmt: skip


def _run(target: Target, action: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run ``action`` on a fresh event loop with a client for ``target``."""

    async def run() -> T:
        async with ApiClient(target.url, target.token) as api:
            return await action(api)

    return asyncio.run(run())


def _segment(value: str) -> str:
    """Quote an id for use as one URL path segment."""
    return quote(value, safe="")


async def server_ids(api: ApiClient, refs: Sequence[str]) -> list[str]:
    """Turn server references (``srv_`` ids or names) into ids; an unknown name is an error."""
    names = [ref for ref in refs if not ref.startswith("srv_")]
    by_name: dict[str, str] = {}
    if names:
        listing = await api.get_all("/servers", 500)
        by_name = {text(item, "name"): text(item, "id") for item in objects(listing, "items")}
    for name in names:
        if name not in by_name:
            raise ClientError(f"no server named {name!r} (see 'berth servers list')")
    return [by_name.get(ref, ref) for ref in refs]


async def server_id(api: ApiClient, ref: str) -> str:
    """Turn one server reference into its id."""
    return (await server_ids(api, [ref]))[0]


@dataclass(frozen=True)
class Options:
    """The global options every command sees."""

    url: str | None
    token: str | None
    as_json: bool

    def target(self) -> Target:
        """The coordinator and token to use (flags, then environment, then the login file)."""
        return resolve(self.url, self.token)

    def call(self, action: Callable[[ApiClient], Awaitable[T]]) -> T:
        """Run one API action against the configured coordinator."""
        return _run(self.target(), action)

    def on_server(self, ref: str, action: Callable[[ApiClient, str], Awaitable[T]]) -> T:
        """Resolve the server reference, then run ``action`` with its id."""

        async def run(api: ApiClient) -> T:
            return await action(api, await server_id(api, ref))

        return self.call(run)

    def show(self, data: JsonObject, human: Callable[[JsonObject], None]) -> None:
        """Print ``data`` as JSON with ``--json``, else through ``human``."""
        if self.as_json:
            render.print_json(data)
        else:
            human(data)


class _Berth(click.Group):
    """The root group: reports API, connection and configuration errors as one line, exit 1."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, turning expected failures into ``berth: <message>``."""
        try:
            return super().invoke(ctx)
        except (ClientError, ConfigError) as exc:
            click.echo(f"berth: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Berth)
@click.option("--url", help="Coordinator URL (default: $BERTH_URL, then 'berth login').")
@click.option("--token", help="API token (default: $BERTH_TOKEN, then 'berth login').")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer instead.")
@click.version_option(PACKAGE_VERSION, prog_name="berth")
@click.pass_context
def main(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> None:
    """Operate a Berth coordinator: servers, projects, resources, deployments, tokens, audit."""
    ctx.obj = Options(url=url, token=token, as_json=as_json)


@main.command()
@click.option("--url", "login_url", help="Coordinator URL, e.g. https://berth.example.com.")
@click.option("--token", "login_token", help="API token (prompted for when omitted).")
@click.option("--email", help="Log in with this account's password instead (opens a session).")
@click.option("--password-stdin", is_flag=True, help="With --email: read the password from stdin.")
@click.pass_obj
def login(
    opts: Options,
    login_url: str | None,
    login_token: str | None,
    email: str | None,
    password_stdin: bool,
) -> None:
    """Verify a URL and API token (or log in with e-mail and password), then save them."""
    raw_url = login_url or opts.url
    if not raw_url:
        raise click.UsageError("pass --url URL, the coordinator's address")
    if email is not None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if password_stdin
            else click.prompt("Password", hide_input=True, err=True)
        )
        session = account_cli.password_login(normalize_url(raw_url), email, password)
        login_token = text(session, "token")
    token: str = login_token or opts.token or click.prompt("API token", hide_input=True, err=True)
    target = Target(url=normalize_url(raw_url), token=token)
    try:
        answer = _run(target, lambda api: api.get("/servers/count"))
    except ApiError as exc:
        if exc.status != 403:
            raise
        answer = {}
        render.warn(f"the token is valid but cannot list servers ({exc.code})")
    path = save_login(target.url, target.token)
    if opts.as_json:
        render.print_json(answer)
    count = f" ({answer['count']} server(s) visible)" if "count" in answer else ""
    click.echo(f"Logged in to {target.url}{count}. Saved to {path}.", err=opts.as_json)


# ---- servers ---------------------------------------------------------------------------------


@main.group()
def servers() -> None:
    """Manage servers (SERVER is an srv_ id or a name)."""


@servers.command("list")
@click.pass_obj
def servers_list(opts: Options) -> None:
    """List servers with their agent status."""
    listing = opts.call(lambda api: api.get_all("/servers", 500))
    empty = "No servers: add one with 'berth servers add NAME'."
    opts.show(listing, lambda d: render.table(objects(d, "items"), SERVER_COLUMNS, empty=empty))


def _print_join_token(answer: JsonObject, url: str) -> None:
    """Print a join token with the commands that use it."""
    token = text(answer, "joinToken")
    expires = render.when(text(answer, "joinTokenExpiresAt"), absolute=True)
    click.echo(f"Join token (one use, expires {expires}):\n  {token}")
    click.echo(f"Install the agent on the server (as root):\n  {text(answer, 'installCommand')}")
    click.echo("Or enroll an agent you installed yourself:")
    click.echo(f"  berth-agent enroll --coordinator {url} --token {token} --state-dir DIR")


@servers.command("add")
@click.argument("name")
@click.option("--host", help="Address of the server, for display.")
@click.option("--ttl", type=click.IntRange(60, 7 * 24 * 3600), help="Join token lifetime, seconds.")
@click.pass_obj
def servers_add(opts: Options, name: str, host: str | None, ttl: int | None) -> None:
    """Register a server; print its join token."""
    body: JsonObject = {"name": name, "host": host, "joinTokenTtlSeconds": ttl}
    answer = opts.call(lambda api: api.post("/servers", body))

    def human(data: JsonObject) -> None:
        click.echo(f"Registered server {name} ({text(data, 'id')}).")
        _print_join_token(data, opts.target().url)

    opts.show(answer, human)


@servers.command("show")
@click.argument("server")
@click.pass_obj
def servers_show(opts: Options, server: str) -> None:
    """Show a server, its agent link and facts."""
    answer = opts.on_server(server, lambda api, sid: api.get(f"/servers/{_segment(sid)}"))

    def human(data: JsonObject) -> None:
        item = render.lookup(data, "server")
        render.details((label, render.lookup(item, path)) for label, path in SERVER_ROWS)
        facts = render.lookup(item, "agent.facts")
        if isinstance(facts, dict) and facts:
            click.echo()
            render.details(sorted(facts.items()), title="Facts")

    opts.show(answer, human)


@servers.command("rename")
@click.argument("server")
@click.argument("new_name")
@click.pass_obj
def servers_rename(opts: Options, server: str, new_name: str) -> None:
    """Rename a server (its id stays the same)."""
    answer = opts.on_server(
        server, lambda api, sid: api.post(f"/servers/{_segment(sid)}/rename", {"name": new_name})
    )
    opts.show(answer, lambda d: click.echo(f"Renamed {server} to {new_name} ({text(d, 'id')})."))


@servers.command("deactivate")
@click.argument("server")
@click.option("--reason", help="Why, for the audit trail.")
@click.pass_obj
def servers_deactivate(opts: Options, server: str, reason: str | None) -> None:
    """Deactivate a server and close its link."""
    answer = opts.on_server(
        server,
        lambda api, sid: api.post(f"/servers/{_segment(sid)}/deactivate", {"reason": reason}),
    )
    opts.show(answer, lambda d: click.echo(f"Deactivated {server} ({text(d, 'id')})."))


@servers.command("delete-check")
@click.argument("server")
@click.pass_obj
def servers_delete_check(opts: Options, server: str) -> None:
    """Show whether a server can be deleted."""
    answer = opts.on_server(
        server, lambda api, sid: api.get(f"/servers/{_segment(sid)}/delete-check")
    )

    def human(data: JsonObject) -> None:
        if data.get("eligible") is True:
            click.echo(f"{server} can be deleted.")
            return
        click.echo(f"{server} cannot be deleted yet:")
        render.table(objects(data, "blockers"), BLOCKER_COLUMNS, empty="(no blockers listed)")

    opts.show(answer, human)


@servers.command("delete")
@click.argument("server")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def servers_delete(opts: Options, server: str, yes: bool) -> None:
    """Delete a deactivated server for good."""
    sid = opts.call(lambda api: server_id(api, server))
    if not yes:
        click.confirm(
            f"Delete server {server} ({sid})? This cannot be undone.", abort=True, err=True
        )
    body: JsonObject = {"confirmation": {"serverId": sid}}
    answer = opts.call(lambda api: api.call("DELETE", f"/servers/{_segment(sid)}", body=body))
    opts.show(answer, lambda d: click.echo(f"Deleted {server} ({text(d, 'id')})."))


@servers.command("test")
@click.argument("server")
@click.pass_obj
def servers_test(opts: Options, server: str) -> None:
    """Test the agent link; exit 1 unless healthy."""
    answer = opts.on_server(
        server, lambda api, sid: api.post(f"/servers/{_segment(sid)}/connectivity-tests", {})
    )

    def human(data: JsonObject) -> None:
        render.details([("Server", text(data, "name")), ("Status", text(data, "status"))])
        click.echo()
        render.table(objects(data, "checks"), CHECK_COLUMNS, empty="No checks ran.")

    opts.show(answer, human)
    if text(answer, "status") != "healthy":
        click.get_current_context().exit(1)


@servers.command("join-token")
@click.argument("server")
@click.pass_obj
def servers_join_token(opts: Options, server: str) -> None:
    """Mint a new one-time join token."""
    answer = opts.on_server(
        server, lambda api, sid: api.post(f"/servers/{_segment(sid)}/agent-enrollments", {})
    )
    opts.show(answer, lambda data: _print_join_token(data, opts.target().url))


@servers.command("rotate-key")
@click.argument("server")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def servers_rotate_key(opts: Options, server: str, yes: bool) -> None:
    """Revoke the agent key; mint a join token."""
    sid = opts.call(lambda api: server_id(api, server))
    if not yes:
        click.confirm(
            f"Revoke the agent key of {server} ({sid})? Its agent disconnects until re-enrolled.",
            abort=True,
            err=True,
        )
    answer = opts.call(lambda api: api.post(f"/servers/{_segment(sid)}/agent-key/rotate", {}))

    def human(data: JsonObject) -> None:
        click.echo(f"Revoked the agent key of {server} ({sid}).")
        _print_join_token(data, opts.target().url)

    opts.show(answer, human)


# ---- API tokens ------------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Create, inspect, rotate and revoke API tokens."""


def _expiry(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Validate ``--expires-at`` (ISO 8601; UTC when it has no offset)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use ISO 8601, e.g. 2030-01-31T12:00:00Z") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _print_secret(data: JsonObject, done: str) -> None:
    """Print a token's plaintext, which the coordinator never shows again."""
    click.echo(f"{done} ({text(data, 'tokenId')}). The token:")
    click.echo(f"  {text(data, 'token')}")
    render.warn("Store it now: it will not be shown again.")


@tokens.command("list")
@click.pass_obj
def tokens_list(opts: Options) -> None:
    """List API tokens (never their secrets)."""
    listing = opts.call(lambda api: api.get_all("/deploy-tokens", 100))
    empty = "No API tokens."
    opts.show(listing, lambda d: render.table(objects(d, "items"), TOKEN_COLUMNS, empty=empty))


@tokens.command("create")
@click.argument("name")
@click.option(
    "--permission",
    "permissions",
    type=click.Choice(PERMISSIONS),
    multiple=True,
    required=True,
    help="What the token may do (repeatable).",
)
@click.option("--server", "server_refs", multiple=True, help="Limit to this server (repeatable).")
@click.option("--expires-at", callback=_expiry, help="ISO 8601 expiry (UTC without an offset).")
@click.pass_obj
def tokens_create(
    opts: Options,
    name: str,
    permissions: tuple[str, ...],
    server_refs: tuple[str, ...],
    expires_at: str | None,
) -> None:
    """Create an API token; print it once."""

    async def create(api: ApiClient) -> JsonObject:
        scope: JsonObject = {
            "permissions": list(permissions),
            "deploymentTargetIds": await server_ids(api, server_refs),
        }
        body: JsonObject = {"displayName": name, "scope": scope, "expiresAt": expires_at}
        return await api.post("/deploy-tokens", body)

    answer = opts.call(create)
    opts.show(answer, lambda data: _print_secret(data, f"Created token {name}"))


@tokens.command("show")
@click.argument("token_id")
@click.pass_obj
def tokens_show(opts: Options, token_id: str) -> None:
    """Show one API token (never its secret)."""
    answer = opts.call(lambda api: api.get(f"/deploy-tokens/{_segment(token_id)}"))
    opts.show(answer, lambda d: render.details((lbl, render.lookup(d, p)) for lbl, p in TOKEN_ROWS))


@tokens.command("rotate")
@click.argument("token_id")
@click.pass_obj
def tokens_rotate(opts: Options, token_id: str) -> None:
    """Replace a token's secret at once."""
    body: JsonObject = {"confirmation": {"tokenId": token_id}}
    answer = opts.call(lambda api: api.post(f"/deploy-tokens/{_segment(token_id)}/rotate", body))
    opts.show(answer, lambda data: _print_secret(data, "Rotated token"))


@tokens.command("revoke")
@click.argument("token_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def tokens_revoke(opts: Options, token_id: str, yes: bool) -> None:
    """Revoke a token for good."""
    if not yes:
        click.confirm(f"Revoke token {token_id}? Its users lose access.", abort=True, err=True)
    body: JsonObject = {"confirmation": {"tokenId": token_id}}
    answer = opts.call(lambda api: api.post(f"/deploy-tokens/{_segment(token_id)}/revoke", body))
    opts.show(answer, lambda data: click.echo(f"Revoked token {text(data, 'tokenId')}."))


# ---- audit -----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Read the audit trail of changes."""


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--aggregate", help="Only events about this id (a server, token, user...).")
@click.option("--cursor", help="Continue after this event id (printed when there are more).")
@click.pass_obj
def audit_list(opts: Options, limit: int, aggregate: str | None, cursor: str | None) -> None:
    """List audit events, oldest first."""
    query = {"limit": limit, "aggregateId": aggregate, "cursor": cursor}
    page = opts.call(lambda api: api.get("/audit-events", query))

    def human(data: JsonObject) -> None:
        render.table(objects(data, "items"), AUDIT_COLUMNS, empty="No audit events.")
        if more := text(data, "nextCursor"):
            click.echo(f"More: berth audit list --cursor {more}", err=True)

    opts.show(page, human)


for _command in (
    *workspace_cli.COMMANDS,
    *deploy_cli.COMMANDS,
    *monitoring_cli.COMMANDS,
    *logs_cli.COMMANDS,
    *terminal_cli.COMMANDS,
    *domains_cli.COMMANDS,
    *db_cli.COMMANDS,
    *volumes_cli.COMMANDS,
    *certs_cli.COMMANDS,
    *tasks_cli.COMMANDS,
    *notify_cli.COMMANDS,
    *account_cli.COMMANDS,
    *access_cli.COMMANDS,
    *dns01_cli.COMMANDS,
    *db_backup_cli.COMMANDS,
    *orgs_cli.COMMANDS,
    *volume_backup_cli.COMMANDS,
    *backup_targets_cli.COMMANDS,
    *volume_policy_cli.COMMANDS,
    *db_policy_cli.COMMANDS,
):
    main.add_command(_command)


def _json_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # ``berth servers list --json`` means ``berth --json servers list``.
    if value and isinstance(ctx.obj, Options):
        ctx.obj = replace(ctx.obj, as_json=True)


def _accept_json_flag(group: click.Group) -> None:
    """Give every command the global ``--json`` too, so it may come after the command."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_json_flag(command)
        elif not any("--json" in getattr(p, "opts", ()) for p in command.params):
            command.params.append(
                click.Option(
                    ["--json", "json_here"],
                    is_flag=True,
                    expose_value=False,
                    callback=_json_here,
                    help="Print the API's JSON answer instead (same as berth --json).",
                )
            )


_accept_json_flag(main)
