"""Backup artifacts on the coordinator's own storage, encrypted in chunks with AES-256-GCM.

Format: ``BERTHBK1`` + an 8-byte random nonce prefix, then records ``[u32 length][ciphertext
+ tag]``; record ``n`` uses nonce ``prefix + n`` and is bound (AAD) to the backup id, its index
and whether it is the last one, so records cannot be reordered, swapped between backups or cut
off. The key is the operator's (``backup_key_file``): without it an artifact is unreadable.
The SHA-256 recorded on the backup is of the stored file, checked again before a restore.
"""

import base64
import hashlib
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import PlatformError

MAGIC: Final = b"BERTHBK1"
_PREFIX_BYTES: Final = 8
_LENGTH: Final = struct.Struct(">I")
# A record's ciphertext is at most one agent chunk plus the tag; anything larger is damage.
MAX_RECORD_BYTES: Final = 4 * 1024 * 1024


class ArtifactDamaged(PlatformError):
    """The artifact does not decrypt with this key, was cut short, or its checksum differs."""


def load_key(path: Path) -> bytes:
    """The operator's 32-byte key (base64 in ``path``); created with mode 0600 when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    key = base64.b64decode(path.read_text().strip(), validate=True)
    if len(key) != 32:
        raise ValueError(f"{path} must hold a base64 256-bit key")
    return key


def _aad(backup_id: str, index: int, last: bool) -> bytes:
    return f"{backup_id}:{index}:{int(last)}".encode()


class ArtifactWriter:
    """Writes one artifact to ``path.partial`` and renames it into place on ``finish``."""

    def __init__(self, path: Path, key: bytes, backup_id: str) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._aead = AESGCM(key)
        self._backup_id = backup_id
        self._prefix = secrets.token_bytes(_PREFIX_BYTES)
        self._index = 0
        self._digest = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file: BinaryIO = open(self._partial, "wb")  # noqa: SIM115 - closed by finish/discard
        self.size = 0
        self.plain_bytes = 0
        self._write(MAGIC + self._prefix)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def _record(self, plain: bytes, last: bool) -> None:
        nonce = self._prefix + struct.pack(">I", self._index)
        sealed = self._aead.encrypt(nonce, plain, _aad(self._backup_id, self._index, last))
        self._write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1
        self.plain_bytes += len(plain)

    def add(self, plain: bytes) -> None:
        """Encrypt and append one chunk."""
        if plain:
            self._record(plain, last=False)

    def finish(self) -> str:
        """Write the closing record, flush to disk, move into place; the file's SHA-256."""
        self._record(b"", last=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial, self.path)
        return self._digest.hexdigest()

    def discard(self) -> None:
        """Remove what was written (a failed backup leaves no artifact)."""
        self._file.close()
        self._partial.unlink(missing_ok=True)


def read_chunks(path: Path, key: bytes, backup_id: str, sha256: str) -> Iterator[bytes]:
    """The plaintext chunks of an artifact; ``ArtifactDamaged`` on any damage (the checksum
    is compared after the last record, before the caller may act on the whole)."""
    aead = AESGCM(key)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            head = source.read(len(MAGIC) + _PREFIX_BYTES)
            digest.update(head)
            if not head.startswith(MAGIC) or len(head) != len(MAGIC) + _PREFIX_BYTES:
                raise ArtifactDamaged("the artifact is not a Berth backup")
            prefix = head[len(MAGIC) :]
            index = 0
            while True:
                raw_length = source.read(_LENGTH.size)
                if len(raw_length) != _LENGTH.size:
                    raise ArtifactDamaged("the artifact is cut short (no closing record)")
                (length,) = _LENGTH.unpack(raw_length)
                if length > MAX_RECORD_BYTES:
                    raise ArtifactDamaged("the artifact holds an oversized record")
                sealed = source.read(length)
                digest.update(raw_length + sealed)
                if len(sealed) != length:
                    raise ArtifactDamaged("the artifact is cut short")
                nonce = prefix + struct.pack(">I", index)
                plain, last = _open(aead, nonce, sealed, backup_id, index)
                index += 1
                if last:
                    if source.read(1):
                        raise ArtifactDamaged("the artifact has bytes after its closing record")
                    break
                yield plain
    except OSError as exc:
        raise ArtifactDamaged(f"the artifact cannot be read: {exc}") from exc
    if digest.hexdigest() != sha256:
        raise ArtifactDamaged("the artifact's SHA-256 differs from the one recorded")


def _open(
    aead: AESGCM, nonce: bytes, sealed: bytes, backup_id: str, index: int
) -> tuple[bytes, bool]:
    for last in (False, True):
        try:
            return aead.decrypt(nonce, sealed, _aad(backup_id, index, last)), last
        except InvalidTag:
            continue
    raise ArtifactDamaged(
        f"record {index} does not decrypt: a different key, or the artifact was altered"
    )
