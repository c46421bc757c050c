"""Test helper: a signed TUF repository built directly with python-tuf's Metadata API.

This is a stand-in for `udriver_repo.Repository` (the repository core) so the client can
be tested before/independently of it. It lays files out as the repository contract says
(public/metadata with consistent snapshots, public/targets/<dir>/<sha256>.<basename>)
and delegates one role per publisher whose paths cover only its PCI vendors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

_SER = JSONSerializer(compact=True)


def _exp(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


class TufRepo:
    """A repository directory with `public/` served as the static tree."""

    def __init__(self, path: Path, expiry_days: float = 7) -> None:
        self.path = path
        self.public = path / "public"
        (self.public / "metadata").mkdir(parents=True, exist_ok=True)
        (self.public / "targets").mkdir(parents=True, exist_ok=True)
        self.days = expiry_days
        self.signers = {r: CryptoSigner.generate_ed25519() for r in
                        ("root", "targets", "snapshot", "timestamp")}
        root = Root(expires=_exp(365), consistent_snapshot=True)
        for role, s in self.signers.items():
            root.add_key(s.public_key, role)
        self.root = Metadata(root)
        self.targets = Metadata(Targets(expires=_exp(self.days)))
        self.targets.signed.delegations = Delegations(keys={}, roles={})
        self.snapshot = Metadata(Snapshot(expires=_exp(self.days)))
        self.timestamp = Metadata(Timestamp(expires=_exp(self.days)))
        self.delegated: dict[str, Metadata[Targets]] = {}
        self.delegated_signers: dict[str, CryptoSigner] = {}
        self._sign_write_root()

    # -- roles -----------------------------------------------------------------------
    def add_vendor(self, name: str, vendors: list[int], class_grant: bool = False) -> None:
        s = CryptoSigner.generate_ed25519()
        paths = [f"drivers/{v:04x}/*" for v in vendors] + [f"index/{v:04x}.json" for v in vendors]
        if class_grant:
            paths += ["drivers/class/*", "index/class.json"]
        delegs = self.targets.signed.delegations
        assert delegs is not None and delegs.roles is not None
        delegs.keys[s.public_key.keyid] = s.public_key
        delegs.roles[name] = DelegatedRole(name, [s.public_key.keyid], 1, True, paths=paths)
        self.delegated[name] = Metadata(Targets(expires=_exp(self.days)))
        self.delegated_signers[name] = s

    def add_target(self, role: str, name: str, data: bytes) -> TargetFile:
        md = self.targets if role == "targets" else self.delegated[role]
        tf = TargetFile.from_data(name, data, ["sha256"])
        d, _, base = name.rpartition("/")
        out = self.public / "targets" / d / f"{hashlib.sha256(data).hexdigest()}.{base}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        md.signed.targets[name] = tf
        return tf

    def target_file(self, name: str) -> Path:
        """Where the served copy of target `name` lives (to tamper with it)."""
        md_roles = [self.targets, *self.delegated.values()]
        for md in md_roles:
            tf = md.signed.targets.get(name)
            if tf is not None:
                d, _, base = name.rpartition("/")
                return self.public / "targets" / d / f"{tf.hashes['sha256']}.{base}"
        raise KeyError(name)

    def add_index(self, role: str, index: str, drivers: list[dict[str, object]]) -> None:
        doc = {"format": 1, "index": index, "drivers": drivers}
        self.add_target(role, f"index/{index}.json",
                        json.dumps(doc, sort_keys=True).encode())

    # -- publishing --------------------------------------------------------------------
    def _write(self, md: Metadata[Any], name: str) -> None:
        (self.public / "metadata" / name).write_bytes(md.to_bytes(_SER))

    def _sign_write_root(self) -> None:
        self.root.signatures.clear()
        self.root.sign(self.signers["root"], append=True)
        self._write(self.root, f"{self.root.signed.version}.root.json")
        (self.path / "root.json").write_bytes(self.root.to_bytes(_SER))

    def publish(self) -> None:
        """Bump and re-sign every non-root role, write consistent snapshots."""
        snap = self.snapshot.signed
        for name, md in self.delegated.items():
            md.signed.version += 1
            md.signed.expires = _exp(self.days)
            md.sign(self.delegated_signers[name])
            self._write(md, f"{md.signed.version}.{name}.json")
            snap.meta[f"{name}.json"] = MetaFile(md.signed.version)
        t = self.targets
        t.signed.version += 1
        t.signed.expires = _exp(self.days)
        t.sign(self.signers["targets"])
        self._write(t, f"{t.signed.version}.targets.json")
        snap.meta["targets.json"] = MetaFile(t.signed.version)
        snap.version += 1
        snap.expires = _exp(self.days)
        self.snapshot.sign(self.signers["snapshot"])
        self._write(self.snapshot, f"{snap.version}.snapshot.json")
        self.write_timestamp(self.days)

    def write_timestamp(self, days: float, bump: bool = True) -> None:
        ts = self.timestamp.signed
        if bump:
            ts.version += 1
        ts.expires = _exp(days)
        ts.snapshot_meta = MetaFile(self.snapshot.signed.version)
        self.timestamp.sign(self.signers["timestamp"])
        self._write(self.timestamp, "timestamp.json")

    def rotate_root(self) -> None:
        """Replace the timestamp key through a new root version (TUF spec 5.3)."""
        new = CryptoSigner.generate_ed25519()
        r = self.root.signed
        r.revoke_key(self.signers["timestamp"].public_key.keyid, "timestamp")
        r.add_key(new.public_key, "timestamp")
        self.signers["timestamp"] = new
        r.version += 1
        self._sign_write_root()
        self.write_timestamp(self.days)

    def save_metadata(self, dest: Path) -> None:
        shutil.copytree(self.public / "metadata", dest)

    def restore_metadata(self, src: Path) -> None:
        shutil.rmtree(self.public / "metadata")
        shutil.copytree(src, self.public / "metadata")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """Serve a directory on 127.0.0.1 (an ephemeral port) in a thread."""

    def __init__(self, directory: Path) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                         partial(_QuietHandler, directory=str(directory)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
