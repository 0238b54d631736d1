"""The agent's Ed25519 identity key, signed with the OpenSSL that Python's ``ssl`` already loaded.

The agent signs one challenge per connection and nothing else at idle. The ``cryptography``
package would do it too, but importing it costs about 7 MiB of resident memory (its Rust
extension and OpenSSL bindings; ``bench/agent_cost.py``), while the interpreter has libcrypto
mapped anyway for the link's TLS. So the key is handed to libcrypto's own Ed25519
(``EVP_DigestSign``, OpenSSL 1.1.1 and later) through ``ctypes``: no cryptography is written
here, only the call. The file format stays what ``cryptography`` wrote before (unencrypted
PKCS#8 PEM), so keys of agents enrolled earlier load as they are.
"""

import base64
import contextlib
import ctypes
import ctypes.util
import os
import ssl  # noqa: F401  (loads libcrypto into the process: the library used below)
from collections.abc import Iterator
from functools import cache
from typing import Final

from shared.challenge import PUBLIC_KEY_PREFIX

_SEED_BYTES: Final = 32
_SIGNATURE_BYTES: Final = 64
_NID_ED25519: Final = 1087  # EVP_PKEY_ED25519
# PKCS#8 (RFC 8410) of an Ed25519 key without its public half: SEQUENCE { version 0,
# AlgorithmIdentifier { 1.3.101.112 }, OCTET STRING { OCTET STRING { 32-byte seed } } }.
_PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")
_PEM_HEAD: Final = b"-----BEGIN PRIVATE KEY-----"
_PEM_TAIL: Final = b"-----END PRIVATE KEY-----"


class AgentKey:
    """An Ed25519 private key (its 32-byte seed): sign, and name the public half."""

    __slots__ = ("_seed",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != _SEED_BYTES:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._seed = bytes(seed)

    @classmethod
    def generate(cls) -> "AgentKey":
        """A fresh key: any 32 random bytes are an Ed25519 private key (RFC 8032, 5.1.5)."""
        return cls(os.urandom(_SEED_BYTES))

    @classmethod
    def from_pem(cls, data: bytes) -> "AgentKey":
        """Load an unencrypted PKCS#8 PEM key; ``ValueError`` when it is not an Ed25519 key."""
        text = data.strip()
        if not (text.startswith(_PEM_HEAD) and text.endswith(_PEM_TAIL)):
            raise ValueError("the key file is not a PEM private key")
        try:
            der = base64.b64decode(b"".join(text[len(_PEM_HEAD) : -len(_PEM_TAIL)].split()))
        except ValueError as exc:
            raise ValueError("the key file's PEM body is not base64") from exc
        if len(der) != len(_PKCS8_PREFIX) + _SEED_BYTES or not der.startswith(_PKCS8_PREFIX):
            raise ValueError("the key file does not hold an Ed25519 private key")
        return cls(der[len(_PKCS8_PREFIX) :])

    def pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM (the file itself is kept 0600)."""
        body = base64.b64encode(_PKCS8_PREFIX + self._seed)
        return _PEM_HEAD + b"\n" + body + b"\n" + _PEM_TAIL + b"\n"

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (64 bytes)."""
        lib = _libcrypto()
        with self._pkey(lib) as key:
            context = lib.EVP_MD_CTX_new()
            try:
                if not context or lib.EVP_DigestSignInit(context, None, None, None, key) != 1:
                    raise RuntimeError("libcrypto could not start an Ed25519 signature")
                signature = ctypes.create_string_buffer(_SIGNATURE_BYTES)
                size = ctypes.c_size_t(_SIGNATURE_BYTES)
                signed = lib.EVP_DigestSign(
                    context, signature, ctypes.byref(size), message, len(message)
                )
                if signed != 1 or size.value != _SIGNATURE_BYTES:
                    raise RuntimeError("libcrypto could not sign with the Ed25519 key")
                return signature.raw
            finally:
                lib.EVP_MD_CTX_free(context)

    def public_bytes(self) -> bytes:
        """The public half (32 raw bytes)."""
        lib = _libcrypto()
        with self._pkey(lib) as key:
            public = ctypes.create_string_buffer(_SEED_BYTES)
            size = ctypes.c_size_t(_SEED_BYTES)
            if lib.EVP_PKEY_get_raw_public_key(key, public, ctypes.byref(size)) != 1:
                raise RuntimeError("libcrypto could not derive the Ed25519 public key")
            return public.raw[: size.value]

    @contextlib.contextmanager
    def _pkey(self, lib: ctypes.CDLL) -> Iterator[int]:
        """libcrypto's key object for this seed, freed after use (signing is rare: none is
        kept between uses)."""
        key = lib.EVP_PKEY_new_raw_private_key(_NID_ED25519, None, self._seed, _SEED_BYTES)
        if not key:
            raise RuntimeError("libcrypto refused the Ed25519 key")
        try:
            yield key
        finally:
            lib.EVP_PKEY_free(key)

    def public_text(self) -> str:
        """``ed25519:<base64 of the public key>``, as the coordinator stores it."""
        return PUBLIC_KEY_PREFIX + base64.b64encode(self.public_bytes()).decode("ascii")

    def __repr__(self) -> str:
        return f"AgentKey({self.public_text()})"


@cache
def _libcrypto() -> ctypes.CDLL:
    """The libcrypto this process already mapped for ``ssl`` (else the system's), typed."""
    lib = ctypes.CDLL(_mapped_libcrypto() or ctypes.util.find_library("crypto") or "libcrypto.so")
    pointer, size_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)
    signatures: dict[str, tuple[list[type], type | None]] = {
        "EVP_PKEY_new_raw_private_key": (
            [ctypes.c_int, pointer, ctypes.c_char_p, ctypes.c_size_t],
            pointer,
        ),
        "EVP_PKEY_get_raw_public_key": ([pointer, ctypes.c_char_p, size_p], ctypes.c_int),
        "EVP_PKEY_free": ([pointer], None),
        "EVP_MD_CTX_new": ([], pointer),
        "EVP_MD_CTX_free": ([pointer], None),
        "EVP_DigestSignInit": ([pointer, pointer, pointer, pointer, pointer], ctypes.c_int),
        "EVP_DigestSign": (
            [pointer, ctypes.c_char_p, size_p, ctypes.c_char_p, ctypes.c_size_t],
            ctypes.c_int,
        ),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = arguments
        function.restype = result
    return lib


def _mapped_libcrypto() -> str | None:
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if "/libcrypto.so" in path:
                    return path
    except OSError:
        pass
    return None
