"""AES-GCM keyring: round trip, binding, rotation, persistence with 0600."""

from pathlib import Path

import pytest

from coordinator.secrets import Keyring, SecretError


def test_round_trip_and_no_plaintext_in_ciphertext() -> None:
    keyring = Keyring.generate()
    sealed = keyring.encrypt("hunter2-very-secret", "variable:resource:res_1:DB")
    assert "hunter2" not in sealed
    assert sealed.startswith(f"berth:v1:{keyring.active}:")
    assert keyring.decrypt(sealed, "variable:resource:res_1:DB") == "hunter2-very-secret"
    assert keyring.encrypt("x", "b") != keyring.encrypt("x", "b")  # fresh nonce each time


def test_ciphertext_is_bound_to_its_row() -> None:
    keyring = Keyring.generate()
    sealed = keyring.encrypt("s", "variable:resource:res_1:DB")
    with pytest.raises(SecretError):
        keyring.decrypt(sealed, "variable:resource:res_2:DB")


def test_tampering_is_detected() -> None:
    keyring = Keyring.generate()
    sealed = keyring.encrypt("s", "b")
    flipped = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretError):
        keyring.decrypt(flipped, "b")


def test_rotation_keeps_old_ciphertexts_readable(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    assert (tmp_path / "secret-keys.json").stat().st_mode & 0o777 == 0o600
    old = keyring.encrypt("v1", "b")
    old_kid = keyring.active
    new_kid = keyring.rotate()
    assert new_kid != old_kid
    reloaded = Keyring.load_or_create(tmp_path)
    assert reloaded.active == new_kid
    assert reloaded.decrypt(old, "b") == "v1"
    assert reloaded.encrypt("v2", "b").startswith(f"berth:v1:{new_kid}:")


def test_unknown_key_id_is_refused() -> None:
    sealed = Keyring.generate().encrypt("s", "b")
    with pytest.raises(SecretError, match="unknown secret key"):
        Keyring.generate().decrypt(sealed, "b")
