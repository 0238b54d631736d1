"""The agent's state directory: enrollment record, private key and CA file, written atomically."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.identity import AgentKey

STATE_FILE: Final = "state.json"
KEY_FILE: Final = "agent.key"
CA_FILE: Final = "ca.pem"


class StateError(Exception):
    """The state directory is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class Enrollment:
    """What the agent learned when it enrolled."""

    coordinator_url: str
    server_id: str
    server_name: str
    key_fingerprint: str
    ca_file: str | None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class StateDir:
    """Reads and writes the files under one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the directory (0700) if missing."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def is_enrolled(self) -> bool:
        """Return whether an enrollment record exists."""
        return (self.root / STATE_FILE).is_file()

    def save(self, enrollment: Enrollment, key: AgentKey, ca_pem: bytes | None) -> None:
        """Persist key (0600), optional CA copy and the enrollment record (written last)."""
        self.ensure()
        _write_atomic(self.root / KEY_FILE, key.pem(), 0o600)
        ca_file = None
        if ca_pem is not None:
            _write_atomic(self.root / CA_FILE, ca_pem, 0o644)
            ca_file = str(self.root / CA_FILE)
        record = {
            "coordinatorUrl": enrollment.coordinator_url,
            "serverId": enrollment.server_id,
            "serverName": enrollment.server_name,
            "keyFingerprint": enrollment.key_fingerprint,
            "caFile": ca_file,
        }
        _write_atomic(self.root / STATE_FILE, json.dumps(record, indent=2).encode(), 0o600)

    def load(self) -> tuple[Enrollment, AgentKey]:
        """Load the enrollment and the private key, or raise ``StateError`` saying what is wrong."""
        state_path = self.root / STATE_FILE
        try:
            record = json.loads(state_path.read_text(encoding="utf-8"))
            enrollment = Enrollment(
                coordinator_url=str(record["coordinatorUrl"]),
                server_id=str(record["serverId"]),
                server_name=str(record.get("serverName", "")),
                key_fingerprint=str(record.get("keyFingerprint", "")),
                ca_file=record.get("caFile"),
            )
        except FileNotFoundError as exc:
            raise StateError(
                f"not enrolled: {state_path} is missing; run 'berth-agent enroll'"
            ) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"cannot read {state_path}: {exc}") from exc
        key_path = self.root / KEY_FILE
        try:
            if key_path.stat().st_mode & 0o077:
                raise StateError(f"{key_path} must not be readable by group or others (chmod 600)")
            key = AgentKey.from_pem(key_path.read_bytes())
        except OSError as exc:
            raise StateError(f"cannot read the agent key {key_path}: {exc}") from exc
        except ValueError as exc:
            raise StateError(f"{key_path} is not a valid key: {exc}") from exc
        return enrollment, key
