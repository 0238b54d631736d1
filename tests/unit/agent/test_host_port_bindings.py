"""hostPort bindings: published on every address beside the edge's loopback port."""

from agent.runtime import RunSpec
from agent.runtime.docker import _managed_from_summary
from agent.runtime.engine_ops import create_config
from agent.runtime.sdk_ops import host_ports, port_taken, sdk_ports

SPEC = RunSpec(name="c", image="i", ports=(8080,), published=((8080, 5432),))


def test_the_host_port_is_bound_everywhere_and_the_edge_port_on_loopback() -> None:
    host = create_config(SPEC, {})["HostConfig"]
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}, {"HostIp": "", "HostPort": "5432"}]
    }
    assert sdk_ports(SPEC) == {"8080/tcp": [("127.0.0.1", None), 5432]}
    assert "PortBindings" not in create_config(RunSpec(name="c", image="i"), {})["HostConfig"]


def test_the_edge_reads_the_loopback_port_whatever_the_order() -> None:
    attrs = {
        "NetworkSettings": {
            "Ports": {
                "8080/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "5432"},
                    {"HostIp": "::", "HostPort": "5432"},
                    {"HostIp": "127.0.0.1", "HostPort": "40001"},
                ]
            }
        }
    }
    assert host_ports(attrs) == {8080: 40001}
    summary = {
        "Id": "x",
        "Labels": {"berth.internal-port": "8080"},
        "Ports": [
            {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 5432, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 40001, "Type": "tcp"},
        ],
    }
    assert _managed_from_summary(summary).host_port == 40001


def test_a_taken_host_port_is_named_with_its_reason_code() -> None:
    error = port_taken(SPEC, "Bind for 0.0.0.0:5432 failed: port is already allocated")
    assert error is not None
    assert "host port 5432 is already in use" in error.message
    assert error.details == {"reasonCode": "host-port-in-use"}
    assert port_taken(SPEC, "no such image") is None
    assert port_taken(RunSpec(name="c", image="i"), "port is already allocated") is None
