"""Accounts: local-password login, TOTP second factor, login sessions (docs/accounts.md)."""

from typing import Final

from aiohttp import web

from coordinator.accounts.lockout import LoginThrottle

LOGIN_THROTTLE_KEY: Final = web.AppKey("login_throttle", LoginThrottle)


def install(app: web.Application) -> None:
    """Plug accounts in: the login backoff's state (routes register in coordinator.api)."""
    app[LOGIN_THROTTLE_KEY] = LoginThrottle()
