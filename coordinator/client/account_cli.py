"""``berth login --email``, ``berth logout``, ``berth account``: password login, sessions, 2FA."""

import asyncio
import platform
import re
import sys
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.config import forget_token, resolve
from coordinator.client.http import ApiClient, ApiError, JsonObject, objects, text

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

SESSION_PREFIX: Final = "berth_ss_"
SESSION_COLUMNS: Final = (
    ("ID", "sessionId"), ("CLIENT", "clientKind"), ("NAME", "displayName"),
    ("ADDRESS", "ipAddress"), ("LAST ACTIVE", "lastActiveAt"), ("EXPIRES", "expiresAt"),
    ("CURRENT", "current"),
)  # fmt: skip
_TOTP: Final = re.compile(r"^\s*[0-9]{6}\s*$")


def password_login(url: str, email: str, password: str) -> JsonObject:
    """Log in with e-mail and password, asking for the second factor when the account has one;
    return the login answer (its ``token`` is the session's bearer secret)."""
    name = f"berth CLI on {platform.node() or 'this host'}"[:200]
    body: JsonObject = {
        "email": email,
        "password": password,
        "clientKind": "cli",
        "displayName": name,
    }

    async def attempt(extra: JsonObject) -> JsonObject:
        async with ApiClient(url, "") as api:
            return await api.post("/auth/login", {**body, **extra})

    try:
        return asyncio.run(attempt({}))
    except ApiError as exc:
        if exc.status != 401 or "secondFactorRequired" not in exc.details:
            raise
    code = click.prompt("Two-factor code (or a recovery code)", hide_input=True, err=True)
    key = "totpCode" if _TOTP.match(code) else "recoveryCode"
    return asyncio.run(attempt({key: code.strip()}))


@click.command()
@click.pass_obj
def logout(opts: "Options") -> None:
    """End the saved login session on the coordinator and forget its token."""
    target = resolve(opts.url, opts.token)
    if target.token.startswith(SESSION_PREFIX):

        async def end(api: ApiClient) -> JsonObject:
            return await api.post("/auth/logout", {})

        try:
            opts.call(end)
        except ApiError as exc:
            if exc.status != 401:  # already ended (revoked, expired): forgetting it is enough
                raise
    path = forget_token()
    click.echo(f"Logged out{f'; removed the token from {path}' if path else ''}.")


@click.group()
def account() -> None:
    """Your own account: profile, password, login sessions, two-factor login."""


@account.command("show")
@click.pass_obj
def account_show(opts: "Options") -> None:
    """Show your profile and whether password and two-factor login are on."""
    answer = opts.call(lambda api: api.get("/account/profile"))
    rows = (
        ("User", "userId"), ("E-mail", "email"), ("Name", "displayName"),
        ("Password", "passwordConfigured"), ("Two-factor", "twoFactorEnabled"),
        ("Created", "createdAt"),
    )  # fmt: skip
    opts.show(
        answer, lambda d: render.details((label, render.lookup(d, key)) for label, key in rows)
    )


@account.command("sessions")
@click.pass_obj
def account_sessions(opts: "Options") -> None:
    """List your live login sessions (browser and CLI)."""
    answer = opts.call(lambda api: api.get_all("/account/sessions", 250))
    opts.show(
        answer,
        lambda d: render.table(objects(d, "items"), SESSION_COLUMNS, empty="No live sessions."),
    )


@account.command("revoke")
@click.argument("session_id")
@click.pass_obj
def account_revoke(opts: "Options", session_id: str) -> None:
    """Revoke one of your sessions; its open streams and terminals end at once."""
    answer = opts.call(lambda api: api.post(f"/account/sessions/{session_id}/revoke", {}))
    opts.show(answer, lambda d: click.echo(f"Revoked session {text(d, 'sessionId')}."))


@account.command("password")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.pass_obj
def account_password(opts: "Options", password_stdin: bool) -> None:
    """Set your password (the first time) or change it; your other sessions end."""
    profile = opts.call(lambda api: api.get("/account/profile"))
    body: JsonObject = {}
    if profile.get("passwordConfigured") is True:
        body["currentPassword"] = click.prompt("Current password", hide_input=True, err=True)
    if password_stdin:
        body["newPassword"] = sys.stdin.readline().rstrip("\n")
    else:
        body["newPassword"] = click.prompt(
            "New password", hide_input=True, confirmation_prompt=True, err=True
        )
    answer = opts.call(lambda api: api.post("/account/password", body))
    ended = len(objects_or_empty(answer, "revokedSessionIds"))
    opts.show(answer, lambda _d: click.echo(f"Password saved; {ended} other session(s) ended."))


def objects_or_empty(data: JsonObject, key: str) -> list[object]:
    """A list field of an answer (empty when absent)."""
    value = data.get(key)
    return list(value) if isinstance(value, list) else []


@account.group("2fa")
def two_factor() -> None:
    """Two-factor login with an authenticator app (TOTP)."""


@two_factor.command("enable")
@click.pass_obj
def two_factor_enable(opts: "Options") -> None:
    """Show a new secret, confirm it with a code, and print one-time recovery codes."""
    enrolment = opts.call(lambda api: api.post("/account/two-factor/enable", {}))
    click.echo("Add this account to your authenticator app:", err=True)
    click.echo(f"  secret: {text(enrolment, 'secret')}", err=True)
    click.echo(f"  URI:    {text(enrolment, 'otpauthUri')}", err=True)
    code = click.prompt("Code from the app", err=True)
    answer = opts.call(lambda api: api.post("/account/two-factor/confirm", {"code": code}))

    def human(data: JsonObject) -> None:
        click.echo("Two-factor login is on. Recovery codes (each works once; keep them safe):")
        for recovery in objects_or_empty(data, "recoveryCodes"):
            click.echo(f"  {recovery}")

    opts.show(answer, human)


@two_factor.command("disable")
@click.pass_obj
def two_factor_disable(opts: "Options") -> None:
    """Turn two-factor login off (asks for a current code or a recovery code)."""
    code = click.prompt("Two-factor code (or a recovery code)", hide_input=True, err=True)
    answer = opts.call(lambda api: api.post("/account/two-factor/disable", {"code": code}))
    opts.show(answer, lambda _d: click.echo("Two-factor login is off."))


COMMANDS: Final = (logout, account)
