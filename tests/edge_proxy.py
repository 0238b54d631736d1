"""A throwaway Caddy edge proxy for tests: admin API and HTTP listener on free ports."""

import json
import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: the sockets are held together while the kernel picks,
    so it cannot hand out one twice (two ``free_port`` calls in a row can return the same port,
    and Caddy, which binds with SO_REUSEPORT, then serves its admin API and the edge's HTTP
    server on one port, each answering a share of the other's requests)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Caddy:
    """A throwaway ``caddy run`` with its admin API and the berth server on free ports."""

    def __init__(self, directory: Path) -> None:
        self.admin_port, self.http_port = free_ports(2)
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """Caddy's data directory (``XDG_DATA_HOME/caddy``): its certificate storage."""
        return self._directory / "caddy"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        config = self._directory / "caddy.json"
        config.write_text(json.dumps({"admin": {"listen": f"127.0.0.1:{self.admin_port}"}}))
        env = {**os.environ, "HOME": str(self._directory), "XDG_DATA_HOME": str(self._directory)}
        self._log = (self._directory / "caddy.log").open("wb")
        self._process = subprocess.Popen(
            ["caddy", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()
