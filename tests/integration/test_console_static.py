"""The coordinator serves the built console under /console/: security headers on every file, an
index fallback for page addresses, immutable caching of hashed assets, precompressed bodies, no
way out of the build directory, and a built index.html without inline script or style."""

import gzip
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coordinator import console
from coordinator.console import DIST
from coordinator.errors import error_middleware
from tests.browser import require_console_parts
from tests.harness import Coordinator

SECURITY = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements/attributes,
    event-handler attributes, javascript: URLs; and the script/stylesheet URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.blocked.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.blocked.append(f"<{tag} {name}=javascript:...>")
        if tag == "style":
            self.blocked.append("<style>")
        if tag == "script":
            self._in_script = True
            if not named.get("src"):
                self.blocked.append("<script> without src")
            else:
                self.scripts.append(str(named["src"]))
        if tag == "link" and named.get("rel") == "stylesheet":
            self.styles.append(str(named["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.blocked.append("inline script text")


def _built_index() -> str:
    require_console_parts()
    return (DIST / "index.html").read_text(encoding="utf-8")


def _assert_secure(headers: dict[str, str]) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    for name, value in SECURITY.items():
        assert headers[name] == value, name


def test_built_index_has_no_inline_script_or_style() -> None:
    parser = _Inline()
    parser.feed(_built_index())
    assert parser.blocked == []
    assert len(parser.scripts) == 1
    assert parser.scripts[0].startswith("/console/assets/main-")
    assert len(parser.styles) == 1
    assert parser.styles[0].startswith("/console/assets/style-")


async def test_pages_and_assets_are_served_with_security_headers(coordinator: Coordinator) -> None:
    parser = _Inline()
    parser.feed(_built_index())
    # Every address that is not an asset is a page: index.html (never another file, e.g. BUILD).
    pages = ("/console/", "/console/servers", "/console/resources/res_x/terminal", "/console/BUILD")
    for page in pages:
        status, body, headers = await coordinator.call("GET", page)
        assert status == 200, (page, body)
        assert headers["Content-Type"].startswith("text/html")
        assert headers["Cache-Control"] == "no-cache"
        assert parser.scripts[0] in body
        _assert_secure(headers)
    # Compressed bodies are checked as sent (this client cannot decode brotli).
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        for asset in (*parser.scripts, *parser.styles):
            plain = (DIST / asset.removeprefix("/console/")).read_bytes()
            for accepted, encoding in (("br, gzip", "br"), ("gzip", "gzip")):
                async with raw.get(
                    coordinator.url + asset, headers={"Accept-Encoding": accepted}
                ) as got:
                    assert got.status == 200, asset
                    assert got.headers["Content-Encoding"] == encoding
                    assert got.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                    _assert_secure(dict(got.headers))
                    sent = await got.read()
                unpacked = gzip.decompress(sent) if encoding == "gzip" else None
                assert len(sent) < len(plain)
                if unpacked is not None:
                    assert unpacked == plain


async def test_console_without_slash_redirects(coordinator: Coordinator) -> None:
    assert coordinator.http is not None
    async with coordinator.http.get(coordinator.url + "/console", allow_redirects=False) as got:
        assert got.status == 308
        assert got.headers["Location"] == "/console/"


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/nope.js",
        "/console/assets/..%2F..%2F__init__.py",
        "/console/assets/..%2Findex.html",
        "/console/assets/.hidden",
        "/console/assets/sub%2Fdir.js",
    ],
)
async def test_nothing_outside_the_assets_is_served(coordinator: Coordinator, path: str) -> None:
    _built_index()
    status, body, headers = await coordinator.call("GET", path)
    assert status == 404, (path, body)
    assert body["error"]["code"] == "not_found"
    assert (
        "Content-Security-Policy" not in headers or "'none'" in headers["Content-Security-Policy"]
    )


async def test_a_coordinator_without_the_built_console_says_how_to_build_it(
    tmp_path: Path,
) -> None:
    app = web.Application(middlewares=[error_middleware])
    console.install(app, dist=tmp_path / "missing")
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/console/servers")
        assert response.status == 404
        body = await response.json()
        assert body["error"]["code"] == "not_found"
        assert "npm ci && npm run build" in body["error"]["message"]
