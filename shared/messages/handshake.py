"""Handshake messages: the coordinator's challenge, the agent's signed hello, the welcome."""

from datetime import datetime
from typing import Literal

from shared.wire import Field, WireModel


class HostFacts(WireModel):
    """Facts about the agent's host, reported on every (re)connect."""

    hostname: str = Field(max_length=255)
    os: str = Field(max_length=255, description="Operating system pretty name, e.g. 'Debian 12'.")
    kernel: str = Field(max_length=255)
    architecture: str = Field(max_length=64)
    cpu_count: int = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    docker_version: str | None = Field(
        default=None, max_length=64, description="Docker engine version; null if unreachable."
    )
    python_version: str = Field(max_length=64)


class Challenge(WireModel):
    """Coordinator → agent, first frame: a fresh nonce the agent must sign."""

    type: Literal["challenge"] = "challenge"
    id: int
    nonce: str = Field(min_length=32, max_length=128, description="Random, single-use, per socket.")
    server_time: datetime


class Hello(WireModel):
    """Agent → coordinator: identity proof plus the host's facts."""

    type: Literal["hello"] = "hello"
    id: int
    server_id: str = Field(min_length=1, max_length=64)
    signature: str = Field(max_length=256, description="Base64 Ed25519 signature of the challenge.")
    agent_version: str = Field(max_length=64)
    facts: HostFacts
    capabilities: list[str] = Field(default_factory=list, max_length=64)


class Welcome(WireModel):
    """Coordinator → agent: the hello was accepted; carries the session's settings."""

    type: Literal["welcome"] = "welcome"
    id: int
    re: int
    server_id: str
    heartbeat_seconds: float = Field(gt=0)
    max_frame_bytes: int = Field(gt=0)
    capabilities: list[str] = Field(default_factory=list)
