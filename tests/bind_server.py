"""A real authoritative DNS server (bind9) on loopback that accepts RFC 2136 updates with TSIG."""

import base64
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import REQUIRE_DOCKER
from tests.dns_server import free_udp_tcp_port

KEY_NAME = "berth-test-key"
ALGORITHM = "hmac-sha256"


class BindServer:
    """bind9 primary for ``zone`` on ``127.0.0.1:port``; every name under it answers 127.0.0.1.

    The wildcard A record lets the same server answer Pebble's lookups; TXT records under the
    zone may be changed by updates signed with ``KEY_NAME`` (``secret``), nothing else may.
    """

    def __init__(self, directory: Path, zone: str) -> None:
        binary = shutil.which("named") or (
            "/usr/sbin/named" if Path("/usr/sbin/named").exists() else None
        )
        if binary is None:
            if REQUIRE_DOCKER:
                pytest.fail("bind9 is required (BERTH_REQUIRE_DOCKER=1): apt-get install bind9")
            pytest.skip("bind9 is not installed")
        self._binary = binary
        self._dir = directory
        self.zone = zone
        self.port = free_udp_tcp_port()
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` as Pebble's ``-dnsserver`` and Berth's provider take it."""
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        d = self._dir
        d.mkdir(parents=True, exist_ok=True)
        (d / f"db.{self.zone}").write_text(
            f"$TTL 60\n@ IN SOA ns1.{self.zone}. hostmaster.{self.zone}. 1 60 60 600 60\n"
            f"@ IN NS ns1.{self.zone}.\nns1 IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
        )
        conf = d / "named.conf"
        conf.write_text(
            f'key "{KEY_NAME}" {{ algorithm {ALGORITHM}; secret "{self.secret}"; }};\n'
            f'options {{ directory "{d}"; listen-on port {self.port} {{ 127.0.0.1; }};\n'
            f'  listen-on-v6 {{ none; }}; pid-file "{d}/named.pid";\n'
            f'  session-keyfile "{d}/session.key"; managed-keys-directory "{d}";\n'
            "  recursion no; allow-query { 127.0.0.0/8; }; dnssec-validation no; };\n"
            "controls { };\n"
            f'zone "{self.zone}" {{ type primary; file "{d}/db.{self.zone}";\n'
            f"  update-policy {{ grant {KEY_NAME} zonesub TXT; }}; }};\n"
        )
        return conf

    def start(self) -> None:
        """Start named in the foreground (as the test's user: pytest's temporary directories
        are not readable by the ``bind`` user) and wait until it answers for the zone."""
        conf = self._write_config()
        self._log = (self._dir / "named.log").open("wb")
        self._process = subprocess.Popen(
            [self._binary, "-g", "-c", str(conf)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        query = dns.message.make_query(self.zone, "SOA")
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                log = (self._dir / "named.log").read_text(errors="replace")
                hint = (
                    " (an AppArmor profile confines named to /etc/bind: "
                    "'aa-complain /usr/sbin/named' on the test machine)"
                    if "permission denied" in log
                    else ""
                )
                pytest.fail(f"named exited{hint}: {log[-600:]}")
            try:
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)  # poll interval; the 15 s deadline bounds it
                continue
            if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                return
            time.sleep(0.05)  # poll interval; the 15 s deadline bounds it
        self.stop()
        pytest.fail(f"named did not serve {self.zone} within 15 s: see {self._dir}/named.log")

    def txt(self, name: str) -> list[str]:
        """The TXT strings at ``name`` as the server answers now."""
        answer = dns.query.udp(
            dns.message.make_query(name, "TXT"), "127.0.0.1", port=self.port, timeout=2
        )
        return [b"".join(rdata.strings).decode() for rrset in answer.answer for rdata in rrset]

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._process is not None:
            self._process.terminate()
            try:
                _ = self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                _ = self._process.wait()
            self._log.close()
            self._process = None
