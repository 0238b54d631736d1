"""Unauthenticated meta routes: the OpenAPI document, the agent install script and package."""

import logging
from importlib import resources
from pathlib import Path

from aiohttp import web

from coordinator.api.openapi import build_openapi
from coordinator.api.routing import Call, route
from coordinator.appkeys import SETTINGS_KEY
from shared.errors import NotFound

logger = logging.getLogger(__name__)


@route(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI document",
    tag="meta",
    permission=None,
    raw_response="application/json",
)
async def openapi(_call: Call) -> web.StreamResponse:
    """Serve the document generated from the route declarations."""
    return web.json_response(build_openapi())


@route(
    "GET",
    "/agent/v1/install.sh",
    summary="The agent install script",
    tag="agent",
    permission=None,
    raw_response="text/x-shellscript",
)
async def install_script(_call: Call) -> web.StreamResponse:
    """Serve ``packaging/install-agent.sh`` (no secrets in it; the join token is the secret)."""
    script = resources.files("coordinator").joinpath("assets/install-agent.sh")
    try:
        text = script.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFound("the install script is not bundled with this coordinator") from exc
    return web.Response(text=text, content_type="text/x-shellscript")


def _newest_wheel(directory: Path) -> Path | None:
    wheels = sorted(directory.glob("berth-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1] if wheels else None


@route(
    "GET",
    "/agent/v1/package",
    summary="The Berth wheel agents install",
    tag="agent",
    permission=None,
    raw_response="application/octet-stream",
)
async def package(call: Call) -> web.StreamResponse:
    """Serve the newest Berth wheel from the package directory (``DATA_DIR/dist`` by default)."""
    settings = call.request.app[SETTINGS_KEY]
    directory = settings.agent_package_dir or settings.data_dir / "dist"
    wheel = _newest_wheel(directory)
    if wheel is None:
        # The directory is the operator's business, not an anonymous caller's: it goes to the log.
        logger.warning(
            "GET /agent/v1/package: no Berth wheel in %s; build one with "
            "'pip wheel --no-deps . -w %s'",
            directory,
            directory,
        )
        raise NotFound(
            "this coordinator publishes no agent package yet (its log says where to put one);"
            " or pass --package to install-agent.sh"
        )
    return web.FileResponse(
        wheel, headers={"Content-Disposition": f'attachment; filename="{wheel.name}"'}
    )
