"""PyNaCl ed25519 keys behind a securesystemslib Signer (`udriver_repo._keys`)."""

from __future__ import annotations

import os
import stat

import pytest
from securesystemslib.exceptions import UnverifiedSignatureError
from tuf.api.metadata import Metadata, Targets
from udriver_repo._keys import NaclSigner, generate_key, load_key

from udriver.errors import RepositoryError


def test_generated_key_file_is_0600_in_a_0700_dir(tmp_path):
    generate_key(tmp_path / "keys" / "a.key")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "a.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700


def test_python_tuf_verifies_our_signature(tmp_path):
    s = generate_key(tmp_path / "a.key")
    md = Metadata(Targets())
    md.sign(s)
    s.public_key.verify_signature(md.signatures[s.keyid], md.signed_bytes)
    assert s.public_key.keytype == "ed25519" and s.public_key.scheme == "ed25519"


def test_signature_over_other_bytes_fails(tmp_path):
    s = generate_key(tmp_path / "a.key")
    sig = s.sign(b"payload")
    with pytest.raises(UnverifiedSignatureError):
        s.public_key.verify_signature(sig, b"other payload")


def test_load_gives_the_same_key(tmp_path):
    s = generate_key(tmp_path / "a.key")
    assert load_key(tmp_path / "a.key").keyid == s.keyid


def test_generate_refuses_to_overwrite(tmp_path):
    generate_key(tmp_path / "a.key")
    with pytest.raises(RepositoryError, match="already exists"):
        generate_key(tmp_path / "a.key")


def test_load_missing_file(tmp_path):
    with pytest.raises(RepositoryError, match="key file not found"):
        load_key(tmp_path / "nope.key")


def test_load_not_a_key_file(tmp_path):
    (tmp_path / "bad.key").write_text('{"keytype": "rsa"}')
    with pytest.raises(RepositoryError, match="not an ed25519 key file"):
        load_key(tmp_path / "bad.key")


def test_wrong_seed_length():
    with pytest.raises(RepositoryError, match="32 bytes"):
        NaclSigner(b"short")


def test_from_priv_key_uri(tmp_path):
    s = generate_key(tmp_path / "a.key")
    assert NaclSigner.from_priv_key_uri(f"nacl:{tmp_path / 'a.key'}", s.public_key).keyid == s.keyid
    other = generate_key(tmp_path / "b.key")
    with pytest.raises(RepositoryError, match="does not match"):
        NaclSigner.from_priv_key_uri(f"nacl:{tmp_path / 'a.key'}", other.public_key)
    with pytest.raises(RepositoryError, match="unsupported key URI scheme"):
        NaclSigner.from_priv_key_uri(f"file:{tmp_path / 'a.key'}", s.public_key)
