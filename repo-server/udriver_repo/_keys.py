"""ed25519 keys through PyNaCl, exposed to python-tuf as a securesystemslib `Signer`.

A key file is JSON `{"keytype": "ed25519", "seed": "<64 hex>"}`, mode 0600, in a 0700
directory (`REPO/keys/<name>.key`, or anywhere for offline root keys). The public half
is an ordinary securesystemslib `SSlibKey` (keytype/scheme "ed25519"), so python-tuf
verifies our signatures with its usual code (TUF spec 4.2, "keys": ed25519 scheme).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey
from securesystemslib.signer._utils import compute_default_keyid

from udriver.errors import RepositoryError

__all__ = ["NaclSigner", "generate_key", "load_key", "public_key"]

_URI_SCHEME = "nacl"


def public_key(verify_key: bytes) -> SSlibKey:
    """The securesystemslib public key for a raw 32-byte ed25519 verify key."""
    keyval = {"public": verify_key.hex()}
    keyid = compute_default_keyid("ed25519", "ed25519", keyval)
    return SSlibKey(keyid, "ed25519", "ed25519", keyval)


class NaclSigner(Signer):
    """Signs with an ed25519 seed held in memory (PyNaCl)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise RepositoryError(f"ed25519 seed must be 32 bytes, got {len(seed)}")
        self._sk = nacl.signing.SigningKey(seed)
        self._key = public_key(bytes(self._sk.verify_key))

    @property
    def public_key(self) -> Key:
        return self._key

    @property
    def keyid(self) -> str:
        return self._key.keyid

    def sign(self, payload: bytes) -> Signature:
        sig = self._sk.sign(payload).signature
        return Signature(self._key.keyid, sig.hex())

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key,
                          secrets_handler: SecretsHandler | None = None) -> NaclSigner:
        """`nacl:/path/to/file.key` -> signer (the public key must match).

        Raises:
            RepositoryError: wrong scheme, unreadable file, or key mismatch.
        """
        scheme, _, path = priv_key_uri.partition(":")
        if scheme != _URI_SCHEME:
            raise RepositoryError(f"unsupported key URI scheme {scheme!r} (expected `nacl:`)")
        signer = load_key(Path(path))
        if signer.public_key != public_key:
            raise RepositoryError(f"{path}: key does not match keyid {public_key.keyid}")
        return signer


def generate_key(path: Path) -> NaclSigner:
    """Create a new key file (0600, refusing to overwrite) and return its signer.

    Raises:
        RepositoryError: the file exists or cannot be written.
    """
    seed = bytes(nacl.signing.SigningKey.generate()._seed)
    data = json.dumps({"keytype": "ed25519", "seed": seed.hex()}).encode() + b"\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise RepositoryError(f"key file already exists, not overwriting: {path}") from e
    except OSError as e:
        raise RepositoryError(f"cannot create key file {path}: {e.strerror}") from e
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return NaclSigner(seed)


def load_key(path: Path) -> NaclSigner:
    """Read a key file written by `generate_key`.

    Raises:
        RepositoryError: missing, unreadable, or not an ed25519 key file.
    """
    try:
        obj: Any = json.loads(path.read_bytes())
        if obj.get("keytype") != "ed25519":
            raise ValueError(f"`keytype` must be \"ed25519\", got {obj.get('keytype')!r}")
        return NaclSigner(bytes.fromhex(obj["seed"]))
    except FileNotFoundError as e:
        raise RepositoryError(f"key file not found: {path}") from e
    except OSError as e:
        raise RepositoryError(f"cannot read key file {path}: {e.strerror}") from e
    except (ValueError, KeyError, TypeError, AttributeError, nacl.exceptions.CryptoError) as e:
        raise RepositoryError(f"not an ed25519 key file: {path}: {e}") from e
