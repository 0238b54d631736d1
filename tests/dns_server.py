"""A real authoritative DNS server (dnsmasq) on loopback for domain-binding tests."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.conftest import REQUIRE_DOCKER

ZONE = "example.test"


def _free_port() -> int:
    """A loopback port free for both UDP and TCP (dnsmasq listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    pytest.fail("no loopback port free for both UDP and TCP")


free_udp_tcp_port = _free_port
"""Public name for other DNS servers' fixtures (bind9 in tests/bind_server.py)."""


class _Exited(Exception):
    """dnsmasq stopped during start-up (its message says why)."""


class DnsServer:
    """dnsmasq authoritative for ``example.test``: unknown names NXDOMAIN, nothing forwarded."""

    def __init__(self, records: list[str]) -> None:
        binary = shutil.which("dnsmasq") or (
            "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
        )
        if binary is None:
            if REQUIRE_DOCKER:
                pytest.fail(
                    "dnsmasq is required (BERTH_REQUIRE_DOCKER=1): apt-get install dnsmasq-base"
                )
            pytest.skip("dnsmasq is not installed")
        self._binary = binary
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._records = list(records)
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False

    def start(self, extra: list[str] | None = None) -> None:
        """(Re)start on the same port with the base records plus ``extra`` options.

        The first start moves to another port if another process took this one meanwhile.
        """
        first = self._process is None and not self._started
        for _ in range(5 if first else 1):
            try:
                self._start(extra)
            except _Exited as exc:
                if not first or "in use" not in str(exc):
                    pytest.fail(f"dnsmasq exited: {exc}")
                self.port = _free_port()
                self.address = f"127.0.0.1:{self.port}"
                continue
            self._started = True
            return
        pytest.fail("dnsmasq found no free port in 5 tries")

    def _start(self, extra: list[str] | None) -> None:
        self.stop()
        args = [
            self._binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            f"--local=/{ZONE}/",
            *self._records,
            *(extra or []),
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        query = dns.message.make_query(f"ready.{ZONE}", "A")
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                _, err = self._process.communicate()
                self._process = None
                raise _Exited(err.decode(errors="replace"))
            try:
                _ = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
            except (dns.exception.Timeout, OSError):
                continue
            return
        pytest.fail("dnsmasq did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._process is not None:
            self._process.terminate()
            try:
                _ = self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                _ = self._process.wait()
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None
