"""The console's two heavy views in headless Chromium, fed by a stub API so that only the
browser is measured: the logs view following 10,000 lines/s for a minute (frames per second,
lines shown vs sent, JS heap, DOM size) and the server chart with a week of five-minute points
(time to draw). The console's files are served by the real ``coordinator.console`` routes.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from playwright.async_api import Browser

from coordinator import console
from tests.browser import chromium, require_console_parts

RESOURCE = "res_bench"
SERVER = "srv_bench"
# Where the console keeps the signed-in token (console/src/session.ts); the stub ignores it.
SIGNED_IN_ENTRY = "berth.console." + "token"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Stub:
    """Just the answers the resource and server pages read, and a log stream at a fixed rate."""

    def __init__(self, rate: int, seconds: float, points: int) -> None:
        self.rate = rate
        self.seconds = seconds
        self.points = points
        self.sent = 0

    def app(self) -> web.Application:
        app = web.Application()
        console.install(app)
        server = {
            "id": SERVER,
            "name": "bench",
            "agent": {"status": "offline", "version": "0", "lastSeenAt": None, "facts": {}},
        }
        answers: dict[str, Any] = {
            f"/resources/{RESOURCE}": {
                "resource": {
                    "id": RESOURCE,
                    "name": "bench",
                    "projectId": "prj_bench",
                    "environmentId": "env_bench",
                }
            },
            "/environments/env_bench": {
                "id": "env_bench",
                "name": "bench",
                "projectId": "prj_bench",
            },
            "/servers": {"items": [server], "nextCursor": None},
            f"/servers/{SERVER}": {"server": server},
            "/deployments": {"items": []},
            f"/resources/{RESOURCE}/effective-config": {"effectiveEntries": []},
            "/runtime-monitoring/rollup": self._rollup(),
        }
        for path, body in answers.items():
            app.router.add_get(path, self._fixed(body))
        app.router.add_get(f"/resources/{RESOURCE}/runtime-logs/stream", self._logs)
        return app

    @staticmethod
    def _fixed(body: Any) -> Any:
        data = orjson.dumps(body)

        async def answer(_request: web.Request) -> web.Response:
            return web.Response(body=data, content_type="application/json")

        return answer

    def _rollup(self) -> dict[str, Any]:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        points_cpu, points_memory = [], []
        for index in range(self.points):
            start = end - timedelta(minutes=5 * (self.points - index))
            stamp = start.isoformat().replace("+00:00", "Z")
            busy = 20 + 15 * ((index * 7919) % 100) / 100
            points_cpu.append({"from": stamp, "totals": {"cpu": {"busyPercent": busy}}})
            points_memory.append(
                {
                    "from": stamp,
                    "totals": {"memory": {"usedBytes": 3e9 + index * 1e5, "totalBytes": 8e9}},
                }
            )
        return {
            "freshness": "stored",
            "series": [
                {"signal": "cpu", "points": points_cpu},
                {"signal": "memory", "points": points_memory},
            ],
            "deploymentMarkers": [],
        }

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        per_tick, tick = self.rate // 100, 0.01
        started = time.monotonic()
        sequence = 0
        while time.monotonic() - started < self.seconds:
            due = started + (sequence // per_tick + 1) * tick
            lines = []
            for _ in range(per_tick):
                sequence += 1
                lines.append(
                    {
                        "stream": "stderr" if sequence % 10 == 0 else "stdout",
                        "timestamp": "2026-12-06T07:00:00.000000000Z",
                        "message": f"GET /api/items/{sequence} 200 in {sequence % 97} ms",
                    }
                )
            data = orjson.dumps({"logs": lines}).decode()
            await response.write(f"id: {sequence}\nevent: runtime-logs\ndata: {data}\n\n".encode())
            self.sent = sequence
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        return response


async def _logs_view(browser: Browser, url: str, stub: Stub) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        await context.add_init_script(f"sessionStorage.setItem({SIGNED_IN_ENTRY!r}, 'bench')")
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await page.goto(f"{url}/console/resources/{RESOURCE}")
        await page.get_by_role("button", name="Follow logs").wait_for()
        # Count animation frames: a frame the page could not paint in time is a frame not seen.
        await page.evaluate(
            """() => {
              window.frames_ = [];
              const tick = (t) => { window.frames_.push(t); requestAnimationFrame(tick); };
              requestAnimationFrame(tick);
            }"""
        )
        await page.get_by_role("button", name="Follow logs").click()
        heap: list[float] = []
        shown: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < stub.seconds:
            await asyncio.sleep(1.0)
            usage = await cdp.send("Runtime.getHeapUsage")
            heap.append(usage["usedSize"] / 2**20)
            shown.append(int(await page.locator("#log-view").get_attribute("data-received") or 0))
        frames: list[float] = await page.evaluate("() => window.frames_")
        nodes: int = await page.evaluate("() => document.getElementsByTagName('*').length")
        rows: int = await page.evaluate("() => document.querySelectorAll('.log-line').length")
    finally:
        await context.close()
    # Frames per second in each whole second of the run.
    per_second: dict[int, int] = {}
    for stamp in frames:
        per_second[int(stamp // 1000)] = per_second.get(int(stamp // 1000), 0) + 1
    counts = sorted(per_second.values())[1:-1] or [0]  # the partial first/last seconds aside
    return {
        "linesSent": stub.sent,
        "linesShown": shown[-1] if shown else 0,
        "fpsMin": counts[0],
        "fpsMedian": statistics.median(counts),
        "heapMiB": {"first": heap[0], "max": max(heap), "last": heap[-1]},
        "domElements": nodes,
        "logRowsInDom": rows,
    }


async def _chart(browser: Browser, url: str, runs: int) -> dict[str, Any]:
    draws: list[float] = []
    for _ in range(runs):
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        try:
            await context.add_init_script(f"sessionStorage.setItem({SIGNED_IN_ENTRY!r}, 'bench')")
            page = await context.new_page()
            await page.goto(f"{url}/console/servers/{SERVER}")
            await page.get_by_label("Window").select_option("five-minute")
            await page.wait_for_function(
                "() => performance.getEntriesByName('berth:chart-draw').length >= 2"
            )
            # The second draw is the week of five-minute points (the first, the default window).
            draws.append(
                await page.evaluate(
                    "() => performance.getEntriesByName('berth:chart-draw')[1].duration"
                )
            )
        finally:
            await context.close()
    return {"drawMsMedian": statistics.median(draws), "drawMsMax": max(draws), "runs": runs}


async def main(rate: int, seconds: float, points: int, runs: int) -> dict[str, Any]:
    require_console_parts()
    stub = Stub(rate, seconds, points)
    runner = web.AppRunner(stub.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with chromium() as browser:
            _log(f"chart: {points} points, {runs} loads")
            chart = await _chart(browser, url, runs)
            _log(f"logs: {rate} lines/s for {seconds:.0f} s")
            logs = await _logs_view(browser, url, stub)
    finally:
        await runner.cleanup()
    return {"rate": rate, "seconds": seconds, "points": points, "chart": chart, "logs": logs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=10_000, help="log lines per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--points", type=int, default=7 * 24 * 12, help="a week of 5-min points")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rate, args.seconds, args.points, args.runs)), indent=2))
