"""Network namespaces for partition tests: a veth pair per agent, cut and degraded with iptables.

Everything stays on this machine: each agent namespace holds one end of a veth pair whose other
end is in the root namespace, with link-local addresses (169.254.x.y/30) that exist only on the
pair. The coordinator listens on the root end of the first pair; the other namespaces reach it
through their own pair with a host route. Rules match only the pair's root-side interface, so
they never touch other traffic (Docker, other tests). Call ``close`` in a ``finally`` block.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass, field


def missing_tools() -> list[str]:
    """What this machine lacks for the namespace tests (root, ip, iptables)."""
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root privileges")
    return missing


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30)


@dataclass
class AgentNamespace:
    """One namespace and its veth pair (``host_address``: root end; ``address``: far end)."""

    name: str
    host_if: str
    host_address: str
    address: str
    rules: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def exec_prefix(self) -> tuple[str, ...]:
        """Prefix a command with this to run it inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def _add_rule(self, *rule: str) -> None:
        _run("iptables", "-w", "-I", *rule)
        self.rules.append(rule)

    def cut(self, *, inbound: bool = True, outbound: bool = True) -> None:
        """Drop silently (no RST, no ICMP): agent -> coordinator and/or coordinator -> agent."""
        if inbound:
            self._add_rule("INPUT", "-i", self.host_if, "-j", "DROP")
        if outbound:
            self._add_rule("OUTPUT", "-o", self.host_if, "-j", "DROP")

    def lossy(self, probability: float) -> None:
        """Drop this share of packets at random, both ways."""
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            self._add_rule(
                chain,
                flag,
                self.host_if,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                f"{probability:g}",
                "-j",
                "DROP",
            )

    def delay(self, milliseconds: int) -> bool:
        """Delay every packet leaving either end (tc netem); False when the kernel lacks netem."""
        done = _run(
            "tc", "qdisc", "add", "dev", self.host_if, "root", "netem",
            "delay", f"{milliseconds}ms", check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return False
        _run(
            *self.exec_prefix, "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
            "delay", f"{milliseconds}ms",
        )  # fmt: skip
        return True

    def heal(self) -> None:
        """Remove every rule this namespace added."""
        while self.rules:
            _run("iptables", "-w", "-D", *self.rules.pop(), check=False)


class Namespaces:
    """A set of agent namespaces wired to one coordinator address in the root namespace."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100000
        # A subnet per test process, so parallel runs on one machine do not collide.
        subnet = 100 + os.getpid() % 150
        self.created: list[AgentNamespace] = []
        try:
            for index in range(count):
                self.created.append(self._create(f"berth-p{tag}-{index}", tag, index, subnet))
        except BaseException:
            self.close()
            raise

    @property
    def coordinator_address(self) -> str:
        """The address the coordinator listens on (root end of the first pair)."""
        return self.created[0].host_address

    def _create(self, name: str, tag: int, index: int, subnet: int) -> AgentNamespace:
        host_if = f"bpc{tag}x{index}"
        host_address = f"169.254.{subnet}.{index * 4 + 1}"
        address = f"169.254.{subnet}.{index * 4 + 2}"
        _run("ip", "netns", "add", name)
        namespace = AgentNamespace(name, host_if, host_address, address)
        inside = namespace.exec_prefix
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name)
        _run("ip", "addr", "add", f"{host_address}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run(*inside, "ip", "addr", "add", f"{address}/30", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        if index > 0:
            coordinator = f"169.254.{subnet}.1"
            _run(*inside, "ip", "route", "add", coordinator, "via", host_address)
        return namespace

    def close(self) -> None:
        """Remove rules, namespaces and veth pairs (deleting a namespace deletes its pair)."""
        for namespace in self.created:
            namespace.heal()
            _run("ip", "netns", "del", namespace.name, check=False)
            _run("ip", "link", "del", namespace.host_if, check=False)
        self.created.clear()
