"""Backup artifacts, encrypted in chunks with AES-256-GCM, whatever target keeps them.

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
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

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


class Sealer:
    """Encrypts a stream into the artifact format, counting and hashing what it produces (the
    bytes go wherever the target keeps them)."""

    def __init__(self, key: bytes, backup_id: str) -> None:
        self._aead = AESGCM(key)
        self._backup_id = backup_id
        self._prefix = secrets.token_bytes(_PREFIX_BYTES)
        self._index = 0
        self._digest = hashlib.sha256()
        self.size = 0
        self.plain_bytes = 0

    def _out(self, data: bytes) -> bytes:
        self._digest.update(data)
        self.size += len(data)
        return data

    def head(self) -> bytes:
        """The header (magic and nonce prefix), first in every artifact."""
        return self._out(MAGIC + self._prefix)

    def record(self, plain: bytes, last: bool = False) -> bytes:
        """One encrypted record."""
        nonce = self._prefix + struct.pack(">I", self._index)
        sealed = self._aead.encrypt(nonce, plain, _aad(self._backup_id, self._index, last))
        self._index += 1
        self.plain_bytes += len(plain)
        return self._out(_LENGTH.pack(len(sealed)) + sealed)

    def sha256(self) -> str:
        """The SHA-256 of every byte produced so far."""
        return self._digest.hexdigest()


class ArtifactWriter:
    """Writes one artifact to ``path.partial`` and renames it into place on ``finish``.

    No file stays open between calls: each one opens, appends and closes. A writer a stopping
    coordinator drops mid-transfer (its task cancelled while a call ran in a thread) can then
    leave at most a partial file, which ``discard`` or the next start removes, never an open
    descriptor. The lock orders a call still running in a thread after ``discard``: once
    discarded, nothing writes (and so recreates) the partial file again."""

    def __init__(self, path: Path, key: bytes, backup_id: str) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._sealer = Sealer(key, backup_id)
        self._lock = threading.Lock()
        self._discarded = False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._partial, "wb") as file:
            file.write(self._sealer.head())

    @property
    def size(self) -> int:
        """Bytes stored so far."""
        return self._sealer.size

    @property
    def plain_bytes(self) -> int:
        """Plaintext bytes taken so far."""
        return self._sealer.plain_bytes

    def _append(self, record: bytes, sync: bool = False) -> None:
        if self._discarded:
            raise ValueError("the artifact was discarded")
        with open(self._partial, "ab") as file:
            file.write(record)
            if sync:
                file.flush()
                os.fsync(file.fileno())

    def add(self, plain: bytes) -> None:
        """Encrypt and append one chunk."""
        if plain:
            with self._lock:
                self._append(self._sealer.record(plain))

    def finish(self) -> str:
        """Write the closing record, flush to disk, move into place; the file's SHA-256."""
        with self._lock:
            self._append(self._sealer.record(b"", last=True), sync=True)
            os.replace(self._partial, self.path)
        return self._sealer.sha256()

    def discard(self) -> None:
        """Remove what was written (a failed backup leaves no artifact)."""
        with self._lock:
            self._discarded = True
            self._partial.unlink(missing_ok=True)

    @property
    def discarded(self) -> bool:
        """Whether ``discard`` ran."""
        return self._discarded


class Opener:
    """Decrypts an artifact fed in pieces of any size: ``feed`` returns the plaintext chunks
    completed so far, ``end`` raises ``ArtifactDamaged`` unless the closing record came and the
    SHA-256 matches (the caller acts on the whole only after ``end``)."""

    def __init__(self, key: bytes, backup_id: str, sha256: str) -> None:
        self._aead = AESGCM(key)
        self._backup_id = backup_id
        self._sha256 = sha256
        self._digest = hashlib.sha256()
        self._buffer = bytearray()
        self._prefix: bytes | None = None
        self._index = 0
        self._closed = False

    def feed(self, data: bytes) -> list[bytes]:
        """The plaintext of every record ``data`` completes."""
        if self._closed and data:
            raise ArtifactDamaged("the artifact has bytes after its closing record")
        self._digest.update(data)
        self._buffer += data
        plain: list[bytes] = []
        if self._prefix is None:
            if len(self._buffer) < len(MAGIC) + _PREFIX_BYTES:
                return plain
            if not self._buffer.startswith(MAGIC):
                raise ArtifactDamaged("the artifact is not a Berth backup")
            self._prefix = bytes(self._buffer[len(MAGIC) : len(MAGIC) + _PREFIX_BYTES])
            del self._buffer[: len(MAGIC) + _PREFIX_BYTES]
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_RECORD_BYTES:
                raise ArtifactDamaged("the artifact holds an oversized record")
            if len(self._buffer) < _LENGTH.size + length:
                break
            sealed = bytes(self._buffer[_LENGTH.size : _LENGTH.size + length])
            del self._buffer[: _LENGTH.size + length]
            nonce = self._prefix + struct.pack(">I", self._index)
            chunk, last = _open(self._aead, nonce, sealed, self._backup_id, self._index)
            self._index += 1
            if last:
                self._closed = True
                if self._buffer:
                    raise ArtifactDamaged("the artifact has bytes after its closing record")
                break
            plain.append(chunk)
        return plain

    def end(self) -> None:
        """Check that the artifact was complete and is the one recorded."""
        if self._prefix is None:
            raise ArtifactDamaged("the artifact is not a Berth backup")
        if not self._closed:
            raise ArtifactDamaged("the artifact is cut short (no closing record)")
        if self._digest.hexdigest() != self._sha256:
            raise ArtifactDamaged("the artifact's SHA-256 differs from the one recorded")


READ_BYTES: Final = 1024 * 1024


def read_chunks(path: Path, key: bytes, backup_id: str, sha256: str) -> Iterator[bytes]:
    """The plaintext chunks of an artifact file; ``ArtifactDamaged`` on any damage (the
    checksum is compared after the last record, before the caller may act on the whole)."""
    opener = Opener(key, backup_id, sha256)
    try:
        with open(path, "rb") as source:
            while data := source.read(READ_BYTES):
                yield from opener.feed(data)
    except OSError as exc:
        raise ArtifactDamaged(f"the artifact cannot be read: {exc}") from exc
    opener.end()


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
