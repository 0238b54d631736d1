"""The web console in headless Chromium: first-load transferred size and time to interactive on
loopback, and the servers page with N registered servers, against a static HTML table of the same
rows served in the same run (the baseline: what the browser needs for the rows alone).

The coordinator runs in-process (SQLite, rate limits off: registering 1,000 servers from one
token is what the limits refuse in production); every load uses a fresh browser context, so the
cache is cold. Figures are medians over --runs loads.
"""

import argparse
import asyncio
import html
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, Page
from yarl import URL

from tests.browser import chromium, require_console_parts
from tests.harness import Coordinator

# Where the console keeps the signed-in token (console/src/session.ts).
SIGNED_IN_ENTRY = "berth.console." + "token"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _transferred(page: Page) -> dict[str, int]:
    """Bytes on the wire (headers + compressed bodies) of every finished request, via CDP;
    ``assetBytes`` counts the console's own files, ``bytes`` adds the API's answers."""
    cdp = await page.context.new_cdp_session(page)
    totals = {"bytes": 0, "assetBytes": 0, "requests": 0}
    urls: dict[str, str] = {}

    def sent(event: dict[str, Any]) -> None:
        urls[event["requestId"]] = event["request"]["url"]

    def finished(event: dict[str, Any]) -> None:
        size = int(event["encodedDataLength"])
        totals["bytes"] += size
        totals["requests"] += 1
        path = URL(urls.get(event["requestId"], "")).path
        if path == "/" or path.startswith("/console"):  # the page's files, not API answers
            totals["assetBytes"] += size

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.loadingFinished", finished)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    return totals


async def _load(browser: Browser, url: str, token: str | None, ready: str) -> dict[str, float]:
    """One cold load of ``url``; times in ms from navigation start."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        if token is not None:
            # As if signed in on this tab: the console keeps the token in sessionStorage.
            await context.add_init_script(f"sessionStorage.setItem({SIGNED_IN_ENTRY!r}, {token!r})")
        page = await context.new_page()
        wire = await _transferred(page)
        await page.goto(url, wait_until="load")
        await page.wait_for_function(ready, timeout=60_000)
        # Let the page's own follow-up calls (e.g. usage bars) finish before counting bytes.
        await page.wait_for_load_state("networkidle")
        timings: dict[str, float] = await page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const ready = performance.getEntriesByName('berth:page-ready')[0];
              const render = performance.getEntriesByName('berth:servers-render')[0];
              let rows = render ? render.duration : 0;
              const table = document.querySelector('table.baseline tbody');
              if (table) {
                // The static page's rows, built again from their HTML and laid out: the
                // cheapest render of the same rows, timed the same way in the same browser.
                const html = table.innerHTML;
                table.innerHTML = '';
                void table.offsetHeight;
                const started = performance.now();
                table.innerHTML = html;
                void table.offsetHeight;
                rows = performance.now() - started;
              }
              return {
                domContentLoaded: nav.domContentLoadedEventEnd,
                load: nav.loadEventEnd,
                interactive: ready ? ready.startTime : nav.loadEventEnd,
                render: rows,
              };
            }"""
        )
        return {**timings, **wire}
    finally:
        await context.close()


def _baseline_app(servers: list[dict[str, Any]]) -> web.Application:
    """The same rows as static, server-rendered HTML: no script, no API calls."""
    rows = "".join(
        f"<tr><td><a href='#'>{html.escape(s['name'])}</a></td><td>{s['agent']['status']}</td>"
        f"<td>{s['agent']['version'] or '-'}</td><td>never</td><td></td></tr>"
        for s in servers
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>baseline</title></head><body>"
        "<table class='baseline'><thead><tr><th>Name</th><th>Agent</th><th>Version</th>"
        f"<th>Last seen</th><th>Usage</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    )

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    return app


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


async def main(servers: int, runs: int) -> dict[str, Any]:
    require_console_parts()
    with tempfile.TemporaryDirectory(prefix="berth-bench-console-") as tmp:
        coordinator = Coordinator(
            Path(tmp) / "coordinator",
            f"sqlite://{Path(tmp) / 'berth.sqlite3'}",
            rate_limit_token_per_minute=0,
            rate_limit_anonymous_per_minute=0,
        )
        await coordinator.start()
        try:
            token = await coordinator.bootstrap()
            _log(f"registering {servers} servers")
            for index in range(servers):
                await coordinator.add_server(token, f"node-{index:04d}")
            listed: list[dict[str, Any]] = []
            cursor = ""
            while True:
                _, page_body, _ = await coordinator.call(
                    "GET", f"/servers?limit=500{cursor}", token=token
                )
                listed += page_body["items"]
                if not page_body["nextCursor"]:
                    break
                cursor = f"&cursor={page_body['nextCursor']}"
            runner = web.AppRunner(_baseline_app(listed))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            baseline_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
            try:
                async with chromium() as browser:
                    results: dict[str, list[dict[str, float]]] = {
                        "sign-in": [],
                        "servers": [],
                        "baseline": [],
                    }
                    for run in range(runs):
                        _log(f"run {run + 1}/{runs}")
                        results["sign-in"].append(
                            await _load(
                                browser,
                                coordinator.url + "/console/sign-in",
                                None,
                                "() => performance.getEntriesByName('berth:page-ready').length > 0",
                            )
                        )
                        results["servers"].append(
                            await _load(
                                browser,
                                coordinator.url + "/console/servers",
                                token,
                                "() => performance.getEntriesByName('berth:page-ready').length > 0",
                            )
                        )
                        results["baseline"].append(
                            await _load(
                                browser,
                                baseline_url,
                                None,
                                "() => document.readyState === 'complete'",
                            )
                        )
            finally:
                await runner.cleanup()
        finally:
            await coordinator.close()
    keys = ("bytes", "assetBytes", "requests", "domContentLoaded", "interactive", "render")
    summary = {name: {key: _median(loads, key) for key in keys} for name, loads in results.items()}
    summary["servers"]["vsBaselineInteractive"] = (
        summary["servers"]["interactive"] / summary["baseline"]["interactive"]
    )
    summary["servers"]["vsBaselineRows"] = (
        summary["servers"]["render"] / summary["baseline"]["render"]
    )
    return {"servers": servers, "runs": runs, "medians": summary}


def _print(result: dict[str, Any]) -> None:
    medians = result["medians"]
    print(f"console, {result['servers']} servers, median of {result['runs']} cold loads")
    print(
        f"{'page':<9} {'all bytes':>11} {'page files':>11} {'requests':>8}"
        f" {'DCL ms':>7} {'ready ms':>8} {'rows ms':>7}"
    )
    for name, figures in medians.items():
        print(
            f"{name:<9} {figures['bytes'] / 1024:>7.1f} KiB"
            f" {figures['assetBytes'] / 1024:>7.1f} KiB"
            f" {figures['requests']:>8.0f}"
            f" {figures['domContentLoaded']:>7.1f} {figures['interactive']:>8.1f}"
            f" {figures['render']:>7.1f}"
        )
    print(
        f"servers page ready / static baseline: {medians['servers']['vsBaselineInteractive']:.2f}x"
    )
    print(f"servers rows / the same rows as HTML: {medians['servers']['vsBaselineRows']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    outcome = asyncio.run(main(args.servers, args.runs))
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        _print(outcome)
