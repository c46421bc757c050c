"""Issue 9, acceptance 4: what the acceptance gate accepts installs safely.

Hypothesis generates driver .debs and wheels from what `udriver build` writes plus
random changes: extra members (names inside and outside the driver's paths, `..`,
absolute), member types (files, directories, symlinks, hard links, devices, FIFOs),
modes (setuid, setgid, sticky, world-writable...), owners, sizes (up to MiBs of zeros),
pax headers, control fields (added, dropped, changed), maintainer scripts, entry points
and Requires-Dist lines. Whatever `udriver.gate.admit` accepts must then:

- .deb: install with the real `dpkg --root` into an empty root and purge again, having
  written only regular files (0644/0755, owner root) and directories inside the
  driver's own paths;
- wheel: install into the client's `DriverStore` with nothing written outside the
  store's `<driver>/<version>/` directory and no symlink or special mode installed.

Refusals are fine (that is the gate's job); the test also checks both outcomes occur,
so the property is not vacuous. Bounded: a fixed seed and 60 examples each.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _gatefactory import (
    Member,
    manifest,
    valid_control,
    valid_deb_members,
    valid_wheel_members,
    wheel_name,
    with_parents,
    write_deb,
    write_wheel,
)
from udriver.client._store import DriverStore
from udriver.errors import GateError
from udriver.gate import admit
from udriver_vm.chroot import need_tools

M = manifest("edu", "0.3.0")
PKG = "udriver-driver-edu"
OWN_PREFIXES = ("usr/lib/udriver/drivers/edu/", "usr/share/doc/udriver-driver-edu/")
OWN_EXACT = {"usr/share/udriver/drivers/edu.json", "usr/lib/udev/rules.d/60-udriver-edu.rules"}
PARENTS = {"usr", "usr/lib", "usr/lib/udriver", "usr/lib/udriver/drivers", "usr/share",
           "usr/share/doc", "usr/share/udriver", "usr/share/udriver/drivers", "usr/lib/udev",
           "usr/lib/udev/rules.d", "usr/lib/udriver/drivers/edu", "usr/share/doc/" + PKG}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

OWN = ["usr/lib/udriver/drivers/edu/udriver_edu/", "usr/lib/udriver/drivers/edu/",
       "usr/share/doc/udriver-driver-edu/", "usr/lib/udriver/drivers/edu/sub/dir/"]
FOREIGN = ["etc/", "usr/bin/", "usr/lib/udev/rules.d/", "usr/lib/udriver/drivers/other/",
           "../", "/", "./usr/../", "var/lib/dpkg/info/"]
leaf = st.text("abcdefgh0123456789._-", min_size=1, max_size=10).filter(
    lambda s: s not in (".", ".."))
# Mostly small; now and then MiBs of zeros, which compress past the gate's ratio bound.
sizes = st.one_of(st.binary(max_size=64), st.binary(max_size=64), st.binary(max_size=64),
                  st.integers(0, 64 * 1024).map(bytes),
                  st.integers(0, 3 * 1024 * 1024).map(bytes))


@st.composite
def members(draw: st.DrawFn) -> Member:
    """A member that is fine, or one with a single hostile attribute (half and half)."""
    kind = draw(st.sampled_from(["file", "file", "dir"]))
    m = Member(draw(st.sampled_from(OWN)) + draw(leaf), b"", kind,
               draw(st.sampled_from([0o644, 0o755] if kind == "file" else [0o755])))
    if kind == "file":
        m.data = draw(sizes)
    # Hypothesis favours small integers and the first choices: the hostile ones come last.
    hostile = None if draw(st.integers(0, 99)) < 80 else draw(
        st.sampled_from(["name", "kind", "mode", "owner", "pax"]))
    if hostile == "name":
        m.name = draw(st.sampled_from(FOREIGN)) + draw(leaf)
    elif hostile == "kind":
        m.kind = draw(st.sampled_from(["symlink", "hardlink", "chr", "fifo"]))
        m.linkname = draw(st.sampled_from(["/etc/shadow", "../x", "x"]))
    elif hostile == "mode":
        m.mode = draw(st.sampled_from([0o600, 0o4755, 0o2755, 0o1755, 0o666, 0o777, 0o640]))
    elif hostile == "owner":
        m.uid, m.uname = draw(st.sampled_from([(1000, "root"), (0, "nobody"), (50, "")]))
    elif hostile == "pax":
        m.pax = {"SCHILY.xattr.security.capability": "1"}
    return m


EXTRA_FIELDS = {"Essential": "yes", "Pre-Depends": "openssh-server", "Provides": "udriver",
                "SHA256": "0" * 64, "Breaks": "udriver", "X-Custom": "1", "Replaces": "udriver"}


@st.composite
def controls(draw: st.DrawFn) -> dict[str, str]:
    c = valid_control(M)
    if draw(st.integers(0, 99)) < 75:
        return c
    for k in draw(st.lists(st.sampled_from(sorted(EXTRA_FIELDS)), max_size=2, unique=True)):
        c[k] = EXTRA_FIELDS[k]
    if draw(st.integers(0, 5)) == 0:
        del c[draw(st.sampled_from(sorted(c)))]
    if draw(st.integers(0, 5)) == 0:
        c["Depends"] = c.get("Depends", "x") + ", " + draw(st.sampled_from(["openssh-server", "udriver", "python3"]))
    return c


def _dpkg_root(tmp: Path) -> Path:
    root = tmp / "root"
    for sub in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
        (root / sub).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    return root


def _outside_admin(root: Path) -> list[Path]:
    out = []
    for top, dirs, files in os.walk(root):
        rel = Path(top).relative_to(root)
        if rel == Path("var/lib/dpkg") or str(rel).startswith("var/lib/dpkg/"):
            continue
        out += [rel / n for n in [*dirs, *files]]
    return [p for p in out if p not in (Path("var"), Path("var/lib"), Path("var/lib/dpkg"))]


def _allowed(rel: str) -> bool:
    return rel in OWN_EXACT or rel in PARENTS or rel.startswith(OWN_PREFIXES)


@pytest.fixture(scope="module")
def rooted() -> None:
    need_tools("dpkg")
    if os.geteuid() != 0:
        pytest.skip("dpkg --root installs files owned by root: needs root")


def test_what_the_gate_accepts_dpkg_installs_inside_the_drivers_paths(rooted: None) -> None:
    seen = {"accepted": 0, "refused": 0, "with extra members": 0}

    @SETTINGS
    @given(extra=st.lists(members(), min_size=1, max_size=4), control=controls(),
           script=st.integers(0, 99).flatmap(lambda n: st.just(None) if n < 85 else
                                             st.sampled_from(["postinst", "preinst", "triggers"])),
           parents=st.integers(0, 99).map(lambda n: n < 90),
           compression=st.sampled_from(["xz", "gz"]))
    def prop(extra: list[Member], control: dict[str, str], script: str | None, parents: bool,
             compression: str) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="udr-gate-"))
        try:
            base = valid_deb_members(M)[1:] + extra
            data = with_parents(base) if parents else [Member("./", kind="dir"), *base]
            cextra = [Member(f"./{script}", b"#!/bin/sh\ntouch /pwned\n", mode=0o755)] \
                if script else []
            deb = write_deb(tmp / "dist", M, data, control=control, control_extra=cextra,
                            compression=compression,
                            filename=f"{PKG}_0.3.0-1_all.deb")
            try:
                admit(deb)
            except GateError:
                seen["refused"] += 1
                return
            seen["accepted"] += 1
            seen["with extra members"] += bool(extra)
            root = _dpkg_root(tmp)
            r = subprocess.run(["dpkg", f"--root={root}", "--force-depends", "-i", str(deb)],
                               capture_output=True, text=True, timeout=120, check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            for rel in _outside_admin(root):
                st_ = os.lstat(root / rel)
                assert _allowed(str(rel)), f"dpkg wrote /{rel}, outside the driver's paths"
                assert stat.S_ISDIR(st_.st_mode) or stat.S_ISREG(st_.st_mode), rel
                assert stat.S_IMODE(st_.st_mode) in (0o644, 0o755), (rel, oct(st_.st_mode))
                assert (st_.st_uid, st_.st_gid) == (0, 0), rel
            assert not (root / "pwned").exists()
            r = subprocess.run(["dpkg", f"--root={root}", "--purge", PKG], capture_output=True,
                               text=True, timeout=120, check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            assert not [p for p in _outside_admin(root) if str(p) not in PARENTS
                        and not str(p).startswith("usr/share/doc")], "purge left files behind"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    prop()
    print(seen)
    assert seen["refused"] >= 10 and seen["with extra members"] >= 10, seen


WHEEL_HOSTILE_PREFIXES = ["", "other_pkg/", "../", "/", "udriver_edu-0.3.0.data/scripts/",
                          "udriver_edu-0.3.0.dist-info/", "x-1.0.dist-info/", "udriver/"]


@st.composite
def wheel_members(draw: st.DrawFn) -> tuple[str, bytes, int]:
    """(name, data, zip mode): fine, or with one hostile attribute."""
    name = draw(st.sampled_from(["udriver_edu/", "udriver_edu/sub/"])) + draw(leaf)
    mode = draw(st.sampled_from([0o100644, 0o100755]))
    hostile = None if draw(st.integers(0, 99)) < 80 else draw(st.sampled_from(["name", "mode"]))
    if hostile == "name":
        name = draw(st.sampled_from(WHEEL_HOSTILE_PREFIXES)) + draw(leaf)
    elif hostile == "mode":
        mode = draw(st.sampled_from([0o104755, 0o120777, 0o100666, 0o102755]))
    return name, draw(sizes), mode


def _rare(values: list[object]) -> st.SearchStrategy[object]:
    """values[0] four times in five, else one of the others."""
    return st.integers(0, 99).flatmap(lambda n: st.just(values[0]) if n < 80
                                      else st.sampled_from(values[1:]))


def test_what_the_gate_accepts_the_store_installs_inside_its_tree(tmp_path: Path) -> None:
    seen = {"accepted": 0, "refused": 0, "with extra members": 0}

    @SETTINGS
    @given(extra=st.lists(wheel_members(), min_size=1, max_size=4),
           ep=_rare([b"", b"edu2 = evil:X\n", b"[console_scripts]\nls = x:y\n", b"; x = y\n"]),
           req=_rare(["", "Requires-Dist: udriver>=0.1\n", "Requires-Dist: requests==9.9\n"]))
    def prop(extra: list[tuple[str, bytes, int]], ep: bytes, req: str) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="udr-gate-", dir=tmp_path))
        try:
            mem = valid_wheel_members(M, metadata_extra=req)
            mem["udriver_edu-0.3.0.dist-info/entry_points.txt"] += ep
            mem_modes = {}
            for name, data, mode in extra:
                mem[name] = data
                mem_modes[name] = mode
            w = write_wheel(tmp / "dist" / wheel_name(M), mem, record_for=M, modes=mem_modes)
            try:
                admit(w)
            except GateError:
                seen["refused"] += 1
                return
            seen["accepted"] += 1
            seen["with extra members"] += bool(extra)
            store = tmp / "state" / "drivers"
            store.mkdir(parents=True)
            before = {p for p in tmp.rglob("*")}
            info = DriverStore(store).install_wheel(w)
            assert info.current == "0.3.0"
            version_dir = store / "edu" / "0.3.0"
            for p in set(tmp.rglob("*")) - before:
                if p.parent == store / "edu" and p.name in ("current", ".lock"):
                    continue
                if p == store.parent / "history.jsonl":  # the store's own log, a fixed name
                    continue
                assert p == store / "edu" or version_dir in (p, *p.parents), \
                    f"the store wrote {p}, outside its version directory"
                st_ = os.lstat(p)
                assert stat.S_ISDIR(st_.st_mode) or stat.S_ISREG(st_.st_mode), p
                assert not stat.S_IMODE(st_.st_mode) & (stat.S_ISUID | stat.S_ISGID
                                                        | stat.S_IWOTH), p
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    prop()
    print(seen)
    assert seen["refused"] >= 10 and seen["with extra members"] >= 10, seen
