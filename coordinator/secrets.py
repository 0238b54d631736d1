"""Secrets at rest: AES-256-GCM with a key id in every ciphertext, so keys can rotate.

The keyring lives in ``DATA_DIR/secret-keys.json`` (0600, created at first start). Each
ciphertext reads ``berth:v1:<key id>:<base64(nonce | ciphertext+tag)>`` and is bound to its row
through associated data (e.g. ``variable:resource:res_x:DATABASE_URL``), so a ciphertext copied
onto another row fails to decrypt instead of leaking under another name.
"""

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYRING_FILE: Final = "secret-keys.json"
MASK: Final = "****"
_PREFIX: Final = "berth:v1:"


class SecretError(Exception):
    """A ciphertext cannot be decrypted (unknown key id, tampering, wrong binding)."""


class Keyring:
    """The coordinator's data keys: one active key encrypts, every known key decrypts."""

    def __init__(self, keys: dict[str, bytes], active: str, path: Path | None = None) -> None:
        if active not in keys:
            raise ValueError("the active key id is not in the keyring")
        self._keys = keys
        self.active = active
        self._path = path

    @classmethod
    def load_or_create(cls, data_dir: Path) -> "Keyring":
        """Load ``DATA_DIR/secret-keys.json``, creating it (0600) with one key on first start."""
        path = data_dir / KEYRING_FILE
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            keys = {kid: base64.b64decode(value) for kid, value in raw["keys"].items()}
            return cls(keys, raw["active"], path)
        keyring = cls.generate(path)
        keyring.save()
        return keyring

    @classmethod
    def generate(cls, path: Path | None = None) -> "Keyring":
        """Return a keyring with one fresh 256-bit key (not yet saved)."""
        kid = "k" + secrets.token_hex(4)
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid, path)

    def rotate(self) -> str:
        """Add a new active key (old ones keep decrypting); return its id."""
        kid = "k" + secrets.token_hex(4)
        self._keys[kid] = AESGCM.generate_key(bit_length=256)
        self.active = kid
        self.save()
        return kid

    def save(self) -> None:
        """Write the keyring atomically with mode 0600."""
        if self._path is None:
            return
        data = json.dumps(
            {
                "active": self.active,
                "keys": {kid: base64.b64encode(key).decode() for kid, key in self._keys.items()},
            }
        ).encode()
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)

    def encrypt(self, plaintext: str, binding: str) -> str:
        """Encrypt ``plaintext`` for the row named by ``binding``."""
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._keys[self.active]).encrypt(
            nonce, plaintext.encode("utf-8"), binding.encode("utf-8")
        )
        return f"{_PREFIX}{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, binding: str) -> str:
        """Decrypt a value produced by ``encrypt`` for the same ``binding``."""
        if not ciphertext.startswith(_PREFIX):
            raise SecretError("not a Berth ciphertext")
        kid, _, payload = ciphertext[len(_PREFIX) :].partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise SecretError(f"unknown secret key id {kid!r}")
        try:
            blob = base64.b64decode(payload, validate=True)
            return AESGCM(key).decrypt(blob[:12], blob[12:], binding.encode("utf-8")).decode()
        except (ValueError, InvalidTag) as exc:
            raise SecretError("secret cannot be decrypted (tampered or bound elsewhere)") from exc
