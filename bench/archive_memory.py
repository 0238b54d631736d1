"""Archive upload memory: the coordinator's RSS while it inspects crafted source archives.

Starts ``python -m coordinator serve`` on a fresh data directory, creates a resource, then
uploads each crafted archive (built on disk, streamed) to ``POST /resources/{id}/source/archive``
and reports, per archive: the answer's status and size, the time it took, and the
coordinator's resident memory before and at its peak during the upload (sampled every 5 ms,
and the kernel's high-water mark, reset before each upload where the kernel allows it).

    .venv/bin/python bench/archive_memory.py            # every case, about a minute
    .venv/bin/python bench/archive_memory.py --json
    PYTHONPATH=/tmp/old-berth .venv/bin/python bench/archive_memory.py   # another checkout

The issue's target: the peak stays within +20 MiB of the idle RSS for any upload under the
size limit. This script prints figures; it asserts nothing.
"""

import argparse
import asyncio
import contextlib
import gzip
import json
import random
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import psutil

HOST = "127.0.0.1"
MIB = 1024 * 1024
READY_TIMEOUT = 60.0
UPLOAD_TIMEOUT = 600.0
SAMPLE_SECONDS = 0.005


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- crafted archives, written block by block so that building them costs no memory ------------


class Sink(Protocol):
    """Where an archive's uncompressed bytes go (a ``GzipFile``)."""

    def write(self, data: bytes, /) -> int:
        """Write ``data``; return how much was written."""
        ...


def _header(name: str, kind: bytes, size: int, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = linkname
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _pad(out: Sink, size: int) -> None:
    out.write(b"\0" * (-size % 512))


def _repeat(out: Sink, byte: bytes, count: int) -> None:
    chunk = byte * MIB
    while count > 0:
        out.write(chunk[: min(count, MIB)])
        count -= MIB


def huge_pax_paths(out: Sink, entries: int = 8, path_mib: int = 50) -> None:
    """The issue's case: entries renamed by pax ``path`` records of ``path_mib`` MiB each."""
    for index in range(entries):
        value_size = path_mib * MIB
        body_size = len(f" path={index}") + value_size + 1
        length = body_size + len(str(body_size))
        length = body_size + len(str(length))
        out.write(_header("././@PaxHeader", tarfile.XHDTYPE, length))
        out.write(f"{length} path={index}".encode())
        _repeat(out, b"a", value_size)
        out.write(b"\n")
        _pad(out, length)
        out.write(_header(f"f{index}", tarfile.REGTYPE, 0))


def huge_gnu_name(out: Sink, name_mib: int = 50) -> None:
    """One member whose GNU long name (``../`` plus ``name_mib`` MiB) is refused and quoted."""
    size = 3 + name_mib * MIB + 1
    out.write(_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, size))
    out.write(b"../")
    _repeat(out, b"n", name_mib * MIB)
    out.write(b"\0")
    _pad(out, size)
    out.write(_header("placeholder", tarfile.REGTYPE, 1) + b"x" + b"\0" * 511)


def many_members(out: Sink, members: int = 100_000) -> None:
    """A valid archive at the member cap: every file in one of 50 000 directories."""
    for index in range(members):
        name = f"d{index % 50_000:06d}" + "s" * 80 + f"/{index:06d}" + "f" * 90
        out.write(_header(name, tarfile.REGTYPE, 0))


def many_symlinks(out: Sink, links: int = 10_000) -> None:
    """A valid archive with ~2 MiB of symlink names and targets, all resolved at the end."""
    out.write(_header("target", tarfile.DIRTYPE, 0))
    for index in range(links):
        name = f"l{index:06d}" + "x" * 90
        out.write(_header(name, tarfile.SYMTYPE, 0, linkname="target/" + "t" * 90))


def every_cap(out: Sink) -> None:
    """Every cap at once: 50 000 directories, 10 000 symlinks, 100 000 members in all."""
    many_symlinks(out)
    many_members(out, 100_000 - 10_001)


def big_valid(out: Sink, size_mib: int = 150) -> None:
    """A valid archive of incompressible data, under the 200 MiB upload limit."""
    rng = random.Random(7)
    per_file = 10 * MIB
    for index in range(size_mib * MIB // per_file):
        out.write(_header(f"blob{index:03d}.bin", tarfile.REGTYPE, per_file))
        for _ in range(per_file // MIB):
            out.write(rng.randbytes(MIB))


def zeros_bomb(out: Sink, size_mib: int = 2000) -> None:
    """One file of zeros just under the 2 GiB unpacked limit: a ~2 MiB upload."""
    out.write(_header("zeros.bin", tarfile.REGTYPE, size_mib * MIB))
    _repeat(out, b"\0", size_mib * MIB)


CASES: dict[str, Callable[[Sink], None]] = {
    "8 entries x 50 MiB pax paths": huge_pax_paths,
    "50 MiB GNU long name, refused": huge_gnu_name,
    "100 000 files in 50 000 dirs": many_members,
    "10 000 symlinks": many_symlinks,
    "every cap at once": every_cap,
    "150 MiB incompressible files": big_valid,
    "2000 MiB of zeros (gzip bomb)": zeros_bomb,
}


def build(path: Path, writer: Callable[[Sink], None]) -> int:
    """Write a gzip tar at ``path`` with ``writer``; return its compressed size."""
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as out:
        writer(out)
        out.write(b"\0" * 1024)
    return path.stat().st_size


# --- measuring ----------------------------------------------------------------------------------


class PeakSampler:
    """Samples a process's RSS on a thread; ``peak`` is the largest seen."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, int(self.proc.memory_info().rss))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _high_water_mark(pid: int) -> int | None:
    """VmHWM in bytes, or None where /proc does not offer it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def _reset_high_water_mark(pid: int) -> bool:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    return False


@dataclass
class Result:
    """One upload's figures."""

    case: str
    upload_kib: float
    status: int
    answer_bytes: int
    message: str
    seconds: float
    rss_before_mib: float
    peak_sampled_mib: float
    peak_hwm_mib: float | None

    @property
    def delta_mib(self) -> float:
        peak = max(self.peak_sampled_mib, self.peak_hwm_mib or 0.0)
        return peak - self.rss_before_mib


class Coordinator:
    """``python -m coordinator serve`` in its own session, on a fresh data directory."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        cmd = [sys.executable, "-m", "coordinator", "serve", "--data-dir"]
        cmd += [str(workdir / "coordinator"), "--listen", f"{HOST}:{self.port}"]
        cmd += ["--log-level", "WARNING"]
        self._log = (workdir / "coordinator.log").open("wb")
        self.popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.proc = psutil.Process(self.popen.pid)

    def stop(self) -> None:
        """SIGTERM, bounded wait, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


async def _call(http: aiohttp.ClientSession, url: str, token: str, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        if response.status >= 300:
            raise RuntimeError(f"POST {url}: HTTP {response.status} {answer}")
        return answer


async def _ready(http: aiohttp.ClientSession, coordinator: Coordinator) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if coordinator.popen.poll() is not None:
            raise RuntimeError("the coordinator exited early (see coordinator.log)")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{coordinator.base}/bootstrap/auth/status") as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError("the coordinator never answered")
        await asyncio.sleep(0.1)


async def _resource(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    admin = {"email": "bench@example.com", "displayName": "bench"}
    token = (await _call(http, f"{base}/bootstrap/auth/first-admin", "", admin))["apiToken"]
    project = await _call(http, f"{base}/projects", token, {"name": "bench"})
    environment = await _call(
        http, f"{base}/environments", token, {"projectId": project["id"], "name": "production"}
    )
    resource = await _call(
        http,
        f"{base}/resources",
        token,
        {"projectId": project["id"], "environmentId": environment["id"], "name": "web"},
    )
    return str(token), str(resource["id"])


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            yield chunk


async def _upload(
    http: aiohttp.ClientSession,
    coordinator: Coordinator,
    token: str,
    rid: str,
    path: Path,
    size: int,
) -> tuple[int, bytes]:
    async def body() -> Any:
        for chunk in _chunks(path):
            yield chunk

    async with http.post(
        f"{coordinator.base}/resources/{rid}/source/archive",
        data=body(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/gzip",
            "Content-Length": str(size),
        },
        timeout=aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT),
    ) as response:
        return response.status, await response.read()


async def measure(workdir: Path, names: list[str]) -> list[Result]:
    """Build every case, start a coordinator, upload each case once and measure it."""
    files: dict[str, tuple[Path, int]] = {}
    for index, name in enumerate(names):
        path = workdir / f"case{index}.tar.gz"
        log(f"building {name!r}")
        files[name] = (path, await asyncio.to_thread(build, path, CASES[name]))
    coordinator = Coordinator(workdir)
    results: list[Result] = []
    try:
        async with aiohttp.ClientSession() as http:
            await _ready(http, coordinator)
            token, rid = await _resource(http, coordinator.base)
            pid = coordinator.popen.pid
            for name in names:
                path, size = files[name]
                await asyncio.sleep(1.0)  # let the previous upload's garbage settle
                before = coordinator.proc.memory_info().rss
                reset = _reset_high_water_mark(pid)
                started = time.monotonic()
                with PeakSampler(coordinator.proc) as sampler:
                    status, answer = await _upload(http, coordinator, token, rid, path, size)
                seconds = time.monotonic() - started
                hwm = _high_water_mark(pid) if reset else None
                message = ""
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    message = str(json.loads(answer)["error"]["message"])[:120]
                result = Result(
                    case=name,
                    upload_kib=round(size / 1024, 1),
                    status=status,
                    answer_bytes=len(answer),
                    message=message,
                    seconds=round(seconds, 2),
                    rss_before_mib=round(before / MIB, 1),
                    peak_sampled_mib=round(sampler.peak / MIB, 1),
                    peak_hwm_mib=round(hwm / MIB, 1) if hwm else None,
                )
                log(f"{name}: HTTP {status}, +{result.delta_mib:.1f} MiB, {seconds:.2f} s")
                results.append(result)
    finally:
        coordinator.stop()
    return results


def main() -> None:
    """Parse arguments, run, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--case", action="append", choices=sorted(CASES), help="run only these cases"
    )
    args = parser.parse_args()
    names = args.case or list(CASES)
    with tempfile.TemporaryDirectory(prefix="berth-archive-bench-") as workdir:
        results = asyncio.run(measure(Path(workdir), names))
    if args.json:
        print(json.dumps([asdict(r) | {"deltaMib": round(r.delta_mib, 1)} for r in results]))
        return
    print(f"{'case':34} {'upload':>10} {'HTTP':>4} {'answer':>10} {'s':>7} {'RSS':>7} {'+peak':>7}")
    for r in results:
        print(
            f"{r.case:34} {r.upload_kib:>7.0f} KiB {r.status:>4} {r.answer_bytes:>8} B "
            f"{r.seconds:>7.2f} {r.rss_before_mib:>7.1f} {r.delta_mib:>+7.1f}"
        )
    for r in results:
        if r.message:
            print(f"  {r.case}: {r.message}")


if __name__ == "__main__":
    main()
