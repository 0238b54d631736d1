"""A throwaway Pebble ACME server on loopback (Debian package ``pebble``) for HTTPS tests."""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_DOCKER
from tests.edge_proxy import free_port


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class _PortTaken(Exception):
    """Pebble exited because a port chosen for it was taken meanwhile."""


class Pebble:
    """Pebble validating HTTP-01 on ``http_port`` through the DNS server at ``dns_address``.

    Its own API is served with a throwaway CA (``listener_ca``); the roots that sign issued
    certificates are made fresh on every start and fetched into ``issued_roots``.
    """

    def __init__(
        self,
        directory: Path,
        http_port: int,
        tls_port: int,
        dns_address: str,
        blocklist: tuple[str, ...] = (),
        authz_reuse_percent: int = 0,
    ) -> None:
        if shutil.which("pebble") is None:
            if REQUIRE_DOCKER:
                pytest.fail("pebble is required (BERTH_REQUIRE_DOCKER=1): apt-get install pebble")
            pytest.skip("pebble is not installed")
        self._dir = directory
        self._authz_reuse = authz_reuse_percent
        self.port = free_port()
        self.management_port = free_port()
        self._http_port, self._tls_port, self._dns = http_port, tls_port, dns_address
        # Names Pebble refuses with rejectedIdentifier (a CA that says no).
        self._blocklist = list(blocklist)
        self.listener_ca = directory / "listener-ca.pem"
        self.issued_roots = directory / "issued-roots.pem"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def _listener_cert(self) -> tuple[Path, Path]:
        # Debian's package ships no test certificates, and Go refuses a CN-only one.
        d = self._dir
        ext = d / "leaf.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        _openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=pebble test CA",
                 "-keyout", str(d / "ca.key"), "-out", str(self.listener_ca))  # fmt: skip
        _openssl("req", *ec, "-subj", "/CN=localhost", "-keyout", str(d / "leaf.key"),
                 "-out", str(d / "leaf.csr"))  # fmt: skip
        _openssl("x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(self.listener_ca),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(ext), "-out", str(d / "leaf.pem"))  # fmt: skip
        return d / "leaf.pem", d / "leaf.key"

    def start(self) -> None:
        # free_port() hands out a port nothing holds now; an outgoing connection may take it
        # as its local port before Pebble binds it. Then Pebble exits at once: new ports.
        for _ in range(3):
            try:
                self._start()
                return
            except _PortTaken:
                self.stop()
                self.port, self.management_port = free_port(), free_port()
        self._start()

    def _start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        cert, key = self._listener_cert()
        config = self._dir / "pebble.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{self.port}",
                        "managementListenAddress": f"127.0.0.1:{self.management_port}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        "httpPort": self._http_port,
                        "tlsPort": self._tls_port,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                        "domainBlocklist": self._blocklist,
                    }
                }
            )
        )
        # No random validation sleeps, no rejected nonces, and no reused authorizations unless
        # a test asks (a reused valid one would hide a failing challenge).
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
               "PEBBLE_AUTHZREUSE": str(self._authz_reuse)}  # fmt: skip
        self._log = (self._dir / "pebble.log").open("wb")
        self._process = subprocess.Popen(
            ["pebble", "-config", str(config), "-dnsserver", self._dns],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._fetch_roots()

    def _fetch_roots(self) -> None:
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        deadline = time.monotonic() + 15
        while True:
            try:
                url = f"https://127.0.0.1:{self.management_port}/roots/0"
                with urllib.request.urlopen(url, context=context, timeout=2) as answer:
                    self.issued_roots.write_bytes(answer.read())
                return
            except OSError:
                exited = self._process is not None and self._process.poll() is not None
                if exited and b"address already in use" in (self._dir / "pebble.log").read_bytes():
                    raise _PortTaken from None
                if time.monotonic() > deadline or exited:
                    pytest.fail("pebble did not start: see " + str(self._dir / "pebble.log"))
                time.sleep(0.1)  # poll interval; the deadline above bounds it

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._process is not None:
            self._log.close()
        self._process = None
