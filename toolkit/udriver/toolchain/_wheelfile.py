"""Rewrite a freshly built wheel: embed the manifest and make it reproducible.

Order of operations:
1. read every member of the input wheel (our own build output, still bounded);
2. add `<dist-info>/udriver.json` (the ID table, `udriver.manifest`);
3. regenerate `<dist-info>/RECORD` (PEP 376 / PEP 427: sha256, urlsafe base64 without
   padding, size; RECORD's own row is empty);
4. write members sorted by name with the dist-info directory last and RECORD as the
   very last member (PEP 427 "Recommended archiver features"), every timestamp set to
   SOURCE_DATE_EPOCH (clamped to 1980, the zip epoch), permissions 0644 or 0755, and a
   fixed deflate level, so the same input always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import BuildError
from ..fsio import replace_atomic
from ..manifest import MANIFEST_NAME, DriverManifest

__all__ = ["rewrite_wheel", "zip_date"]

_ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest date a zip entry can hold


def zip_date(epoch: int) -> tuple[int, int, int, int, int, int]:
    """A zip `date_time` tuple (UTC) for `epoch`, clamped to 1980."""
    t = time.gmtime(max(epoch, _ZIP_EPOCH))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _order(name: str, dist_info: str) -> tuple[int, str]:
    if name == f"{dist_info}/RECORD":
        return (2, name)
    return (1 if name.startswith(dist_info + "/") else 0, name)


def rewrite_wheel(src: Path, dest: Path, manifest: DriverManifest | None, epoch: int,
                  transform: Callable[[str, bytes], bytes] | None = None) -> None:
    """Write `dest`: `src` with the manifest embedded, normalised for reproducibility.

    `transform(name, data)`, when given, may replace a member's contents first (used to
    strip native code); `manifest=None` embeds nothing.

    Raises:
        BuildError: `src` is not a wheel with exactly one `.dist-info` directory.
    """
    try:
        with zipfile.ZipFile(src) as zf:
            members: dict[str, tuple[bytes, bool]] = {}
            for info in zf.infolist():
                if info.is_dir():
                    continue
                mode = (info.external_attr >> 16) & 0o777
                data = zf.read(info)
                if transform is not None:
                    data = transform(info.filename, data)
                members[info.filename] = (data, bool(mode & 0o111))
    except (zipfile.BadZipFile, OSError) as e:
        raise BuildError(f"the build backend wrote an unreadable wheel {src.name}: {e}") from e
    dist_infos = {n.split("/", 1)[0] for n in members if n.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise BuildError(f"{src.name}: expected one .dist-info directory, found {sorted(dist_infos)}")
    dist_info = dist_infos.pop()
    members.pop(f"{dist_info}/RECORD", None)
    if manifest is not None:
        members[f"{dist_info}/{MANIFEST_NAME}"] = (manifest.to_json(), False)
    record_rows = [f"{n},{_record_hash(d)},{len(d)}" for n, (d, _) in members.items()]
    record_rows.append(f"{dist_info}/RECORD,,")
    record = ("\n".join(sorted(record_rows, key=lambda r: _order(r.split(",")[0], dist_info)))
              + "\n").encode()
    members[f"{dist_info}/RECORD"] = (record, False)
    date = zip_date(epoch)

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w") as out:
            for name in sorted(members, key=lambda n: _order(n, dist_info)):
                data, executable = members[name]
                zi = zipfile.ZipInfo(name, date_time=date)
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.create_system = 3  # Unix, so external_attr carries the mode
                zi.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
                out.writestr(zi, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)

    replace_atomic(dest, write, 0o644)
