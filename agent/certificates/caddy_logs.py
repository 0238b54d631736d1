"""Caddy's ACME log lines, streamed to the agent over loopback TCP (Caddy's ``net`` writer).

The agent listens on an ephemeral loopback port and points a Caddy log named
``berth-certificates`` at it through the admin API, so no file has to be shared between the two
users they run as. Caddy 2.6 dials the writer when the config loads, so the listener is up
first; a restarted agent re-points the log at its new port.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Final

from agent.edge_admin import admin_edit, admin_request
from shared.errors import RuntimeFailed

logger = logging.getLogger(__name__)

LOG_NAME: Final = "berth-certificates"
# The loggers whose lines tell an order's fate (Caddy 2.6 names; later versions add
# tls.issuance.acme*). Prefixes: each includes its children.
_INCLUDE: Final = ["tls.obtain", "tls.renew", "http.acme_client", "tls.issuance"]
_MAX_LINE: Final = 64 * 1024


def log_config(port: int) -> dict[str, Any]:
    """The Caddy log that streams ACME lines as JSON to ``127.0.0.1:port``."""
    return {
        "writer": {"output": "net", "address": f"tcp/127.0.0.1:{port}"},
        "encoder": {"format": "json"},
        "level": "INFO",
        "include": list(_INCLUDE),
    }


class CaddyAdmin:
    """The few admin-API calls this feature needs (the edge's routes are agent/edge.py's)."""

    def __init__(self, admin_url: str) -> None:
        self._admin = admin_url.rstrip("/")

    async def call(
        self, method: str, path: str, body: Any = None, *, force: bool = False
    ) -> tuple[int, Any]:
        """One request; ``(status, parsed JSON or None)``; ``OSError`` or ``TimeoutError`` when
        Caddy cannot be reached.

        ``force`` asks Caddy to apply a config even when it is unchanged.
        """
        headers = {"Cache-Control": "must-revalidate"} if force else {}
        try:
            status, text = await admin_request(self._admin, method, path, body, headers)
        except ValueError as exc:  # an admin URL that is not http(s)
            raise OSError(f"Caddy's admin API {self._admin} failed: {exc}") from exc
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        return status, parsed

    async def edit(self, path: str, change: Callable[[Any], Any]) -> None:
        """Read ``path`` and write back ``change(read)`` as one step of the agent's queue of
        admin requests to this Caddy (``admin_edit``); ``OSError`` when Caddy refuses or
        cannot be reached."""
        try:
            await admin_edit(self._admin, path, change)
        except RuntimeFailed as exc:
            raise OSError(str(exc)) from exc

    async def ensure_log(self, port: int) -> None:
        """Point the ``berth-certificates`` log at ``port`` (creating the parents it needs)."""
        wanted = log_config(port)
        status, current = await self.call("GET", f"/config/logging/logs/{LOG_NAME}")
        if status == 200 and current == wanted:
            return
        status, logging_ = await self.call("GET", "/config/logging")
        if not isinstance(logging_, dict):
            path, body = "/config/logging", {"logs": {LOG_NAME: wanted}}
        elif not isinstance(logging_.get("logs"), dict):
            path, body = "/config/logging/logs", {LOG_NAME: wanted}
        else:
            path, body = f"/config/logging/logs/{LOG_NAME}", wanted
        status, answer = await self.call("POST", path, body)
        if status >= 400:
            raise OSError(f"Caddy refused the certificate log ({status}): {answer}")

    async def restart_management(self) -> None:
        """Reload the running config as it is: Caddy restarts certificate management, so a
        name waiting out its retry back-off is tried again at once."""
        status, config = await self.call("GET", "/config/")
        if status >= 400 or not isinstance(config, dict):
            raise OSError(f"Caddy's config is unreadable ({status})")
        status, answer = await self.call("POST", "/load", config, force=True)
        if status >= 400:
            raise OSError(f"Caddy refused to reload ({status}): {answer}")

    async def storage_root(self) -> str | None:
        """The file-system storage root configured in Caddy, if one is."""
        status, storage = await self.call("GET", "/config/storage")
        if status == 200 and isinstance(storage, dict) and storage.get("module") == "file_system":
            root = storage.get("root")
            return root if isinstance(root, str) and root else None
        return None


class LogReceiver:
    """A loopback listener handing each JSON log entry Caddy sends to ``on_entry``."""

    def __init__(self, on_entry: Callable[[dict[str, Any]], None]) -> None:
        self._on_entry = on_entry
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_LINE)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn or non-JSON line: skip it, keep the stream
                if isinstance(entry, dict):
                    self._on_entry(entry)
        except (OSError, ValueError, asyncio.LimitOverrunError):
            logger.debug("Caddy's log connection ended", exc_info=True)
        except asyncio.CancelledError:
            # The agent is stopping. Ending the task normally, not cancelled: Python 3.11's
            # start_server logs "Exception in callback" for a cancelled connection task.
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
