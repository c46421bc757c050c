"""udriver.gate.admit: one test per rejection rule, each checking its clear message.

Artifacts come from tests/_gatefactory.py: exactly what `udriver build` writes, with one
thing changed per test. Every refusal also checks the problem's rule and that the
message names the offending value.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from _gatefactory import (
    EDU,
    Member,
    control_text,
    manifest,
    valid_control,
    valid_deb_members,
    valid_wheel_members,
    wheel_name,
    with_parents,
    write_deb,
    write_wheel,
)
from udriver._debpolicy import CONTROL_FIELDS, udev_rules_text
from udriver.errors import GateError, GateIdTableError, ManifestError, PackageError
from udriver.gate import GateLimits, admit, check_wheel_bounds

M = manifest()
MIB = 1024 * 1024


def refused(path: Path, rule: str, *fragments: str, limits: GateLimits | None = None) -> str:
    """Assert the gate refuses `path` with a problem of `rule` whose message has `fragments`."""
    with pytest.raises(GateError) as ei:
        admit(path, limits or GateLimits())
    msgs = [msg for r, msg in ei.value.problems if r == rule]
    assert msgs, f"no {rule!r} problem in {ei.value.problems}"
    assert any(all(f in msg for f in fragments) for msg in msgs), msgs
    assert str(ei.value).startswith(f"{path.name}: refused (")
    return msgs[0]


def wheel(tmp: Path, m=M, members=None, *, name=None, modes=None, record=True, **kw) -> Path:  # type: ignore[no-untyped-def]
    mem = valid_wheel_members(m, **kw) if members is None else members
    return write_wheel(tmp / (name or wheel_name(m)), mem, record_for=m if record else None,
                       modes=modes)


def with_member(name: str, data: bytes = b"x = 1\n") -> dict[str, bytes]:
    return {**valid_wheel_members(M), name: data}


# ----------------------------------------------------------------------- accepted


def test_valid_wheel_is_admitted(tmp_path: Path) -> None:
    a = admit(wheel(tmp_path))
    assert (a.kind, a.manifest, a.control, a.version_key) == ("wheel", M, None, "0.1")
    assert a.data == (tmp_path / wheel_name(M)).read_bytes()


def test_valid_deb_is_admitted_with_fields_from_the_manifest(tmp_path: Path) -> None:
    a = admit(write_deb(tmp_path, M))
    assert a.kind == "deb" and a.manifest == M
    assert a.control is not None and list(a.control) == list(CONTROL_FIELDS)
    assert a.control["Modaliases"] == f"udriver({EDU})"


def test_toolchain_built_deb_and_wheel_are_admitted(tmp_path: Path) -> None:
    import sys
    sys.path.insert(0, str(Path(__file__).parents[1] / "repo"))
    from udriver_vm.repofactory import make_driver  # the toolchain's own build_deb
    for f in make_driver(tmp_path)[1]:
        assert admit(f).manifest.driver == "edu"


def test_every_problem_at_once(tmp_path: Path) -> None:
    mem = with_member("udriver_edu/x.py")
    mem["udriver_edu-0.1.0.dist-info/METADATA"] += b"Requires-Dist: requests==9.9\n"
    mem["udriver_edu-0.1.0.dist-info/entry_points.txt"] += b"[console_scripts]\nx = y:z\n"
    w = write_wheel(tmp_path / "udriver_edu-0.2.0-py3-none-any.whl", mem, record_for=M)
    with pytest.raises(GateError) as ei:
        admit(w)
    assert {r for r, _ in ei.value.problems} == {"requires-dist", "entry-points", "file-name"}


# ----------------------------------------------------------------------- bounds


def test_case6_many_members_of_zeros_is_a_bomb(tmp_path: Path) -> None:
    # issue 9 case 6: 31 members x 32 MiB of zeros, about 1 MB on disk.
    mem = valid_wheel_members(M)
    mem.update({f"udriver_edu/blob{i}.bin": bytes(32 * MIB) for i in range(31)})
    w = write_wheel(tmp_path / wheel_name(M), mem, record_for=M, level=9)
    assert w.stat().st_size < 2 * MIB
    refused(w, "bomb", "zip bomb: member 'udriver_edu/blob0.bin' unpacks 33554432 bytes",
            "ratio over 100:1")
    refused(w, "bomb", "zip bomb: members unpack to 1040", "in total (limit 268435456)")


def test_member_over_the_per_member_limit(tmp_path: Path) -> None:
    w = wheel(tmp_path, members=with_member("udriver_edu/big.bin", bytes(2 * MIB)))
    refused(w, "bomb", "unpacks to 2097152 bytes (limit per member 1048576)",
            limits=GateLimits(member_bytes=MIB, ratio=10**6))


def test_whole_archive_ratio(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem.update({f"udriver_edu/b{i}.bin": bytes(MIB // 2) for i in range(6)})
    w = wheel(tmp_path, members=mem)
    refused(w, "bomb", "-byte archive (ratio over 50:1)",
            limits=GateLimits(ratio=50, ratio_floor=MIB))


def test_file_over_the_archive_limit(tmp_path: Path) -> None:
    refused(wheel(tmp_path), "size", "the file is larger than 100 bytes",
            limits=GateLimits(archive_bytes=100))


def test_too_many_members(tmp_path: Path) -> None:
    refused(wheel(tmp_path), "size", "too many members", limits=GateLimits(members=3))


def test_check_wheel_bounds_refuses_case6(tmp_path: Path) -> None:
    mem = {f"b{i}.bin": bytes(32 * MIB) for i in range(31)}
    w = write_wheel(tmp_path / wheel_name(M), mem, level=9)
    with pytest.raises(GateError, match="ratio over 100:1"):
        check_wheel_bounds(w)
    check_wheel_bounds(wheel(tmp_path / "ok"))


# ----------------------------------------------------------------------- wheel rules


def test_not_a_zip(tmp_path: Path) -> None:
    w = tmp_path / wheel_name(M)
    w.write_bytes(b"PK\x03\x04 truncated")
    refused(w, "archive", "not a valid wheel (zip) file")


def test_case8_prefixed_body(tmp_path: Path) -> None:
    # issue 9 case 8: a multipart body (or any HTML prefix) around a real wheel; zipfile
    # alone would read it.
    w = wheel(tmp_path)
    body = w.read_bytes()
    prefix = (b"--x\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n<html>hi</html>")
    w.write_bytes(prefix + body)
    assert zipfile.ZipFile(w).namelist()  # what the gate must not rely on
    refused(w, "archive", f"the wheel has {len(prefix)} bytes before its first zip member")


def test_bytes_after_the_end_record(tmp_path: Path) -> None:
    w = wheel(tmp_path)
    w.write_bytes(w.read_bytes() + b"<html>trailer</html>")
    refused(w, "archive", "after the zip's end record")


def test_not_an_artifact_name(tmp_path: Path) -> None:
    f = tmp_path / "x.tar.gz"
    f.write_bytes(b"x")
    refused(f, "file-name", "expected a .whl or .deb")


@pytest.mark.parametrize("name", ["../../etc/evil.py", "/etc/evil.py", "a\\b.py", "a/./b.py"])
def test_unsafe_member_name(tmp_path: Path, name: str) -> None:
    refused(wheel(tmp_path, members=with_member(name)), "member-name", "unsafe member name",
            repr(name))


def test_duplicate_member(tmp_path: Path) -> None:
    w = wheel(tmp_path)
    with zipfile.ZipFile(w, "a") as zf, pytest.warns(UserWarning):
        zf.writestr("udriver_edu/__init__.py", b"again\n")
    refused(w, "member-name", "duplicate member names", "udriver_edu/__init__.py")


def test_symlink_member(tmp_path: Path) -> None:
    w = wheel(tmp_path, members=with_member("udriver_edu/l", b"/etc/shadow"),
              modes={"udriver_edu/l": 0o120777})
    refused(w, "member-type", "'udriver_edu/l' is a symlink")


@pytest.mark.parametrize("mode", [0o104755, 0o102755, 0o100666])
def test_setuid_setgid_world_writable_member(tmp_path: Path, mode: int) -> None:
    w = wheel(tmp_path, members=with_member("udriver_edu/x"), modes={"udriver_edu/x": mode})
    refused(w, "mode", f"has mode {mode & 0o7777:04o}")


def test_data_directory(tmp_path: Path) -> None:
    w = wheel(tmp_path, members=with_member("udriver_edu-0.1.0.data/scripts/evil"))
    refused(w, "layout", "a `.data` directory installs files outside")


def test_top_level_udriver_package(tmp_path: Path) -> None:
    refused(wheel(tmp_path, members=with_member("udriver/__init__.py")), "layout",
            "would shadow the runtime")


def test_missing_id_table(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    del mem["udriver_edu-0.1.0.dist-info/udriver.json"]
    refused(wheel(tmp_path, members=mem), "dist-info", "no `*.dist-info/udriver.json`")


def test_invalid_id_table_is_a_manifest_error(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem["udriver_edu-0.1.0.dist-info/udriver.json"] = b'{"format": 1}'
    w = wheel(tmp_path, members=mem)
    with pytest.raises(GateIdTableError) as ei:
        admit(w)
    assert isinstance(ei.value, ManifestError) and isinstance(ei.value, PackageError)
    assert "invalid ID table" in str(ei.value) and "`package` must be" in str(ei.value)


def test_version_not_in_normal_form(tmp_path: Path) -> None:
    m = manifest(version="1.0.0-rc1")
    w = write_wheel(tmp_path / "udriver_edu-1.0.0rc1-py3-none-any.whl",
                    valid_wheel_members(m), record_for=m)
    refused(w, "version", "'1.0.0-rc1', not in PEP 440 normal form; write '1.0.0rc1'")


def test_file_name_with_another_version(tmp_path: Path) -> None:
    refused(wheel(tmp_path, name="udriver_edu-9.9.9-py3-none-any.whl"), "file-name",
            "file name says udriver-edu 9.9.9 but the manifest says udriver-edu 0.1.0")


def test_case7_equal_normalised_version_spelled_differently(tmp_path: Path) -> None:
    refused(wheel(tmp_path, name="udriver_edu-0.1.0.0-py3-none-any.whl"), "file-name",
            "version '0.1.0.0' is the same PEP 440 version as the manifest's '0.1.0'")


def test_case7_version_key_is_normalised(tmp_path: Path) -> None:
    m = manifest(version="0.1.0.0")
    w = write_wheel(tmp_path / wheel_name(m), valid_wheel_members(m), record_for=m)
    assert admit(w).version_key == admit(wheel(tmp_path / "b")).version_key == "0.1"


def test_invalid_wheel_file_name(tmp_path: Path) -> None:
    refused(wheel(tmp_path, name="udriver_edu.whl"), "file-name", "invalid wheel file name")


def test_case8_requires_dist_other_than_udriver(tmp_path: Path) -> None:
    w = wheel(tmp_path, metadata_extra="Requires-Dist: requests==9.9\n")
    refused(w, "requires-dist", "`Requires-Dist: requests==9.9`", "depend only on udriver")


def test_requires_dist_on_udriver_is_fine(tmp_path: Path) -> None:
    assert admit(wheel(tmp_path, metadata_extra="Requires-Dist: udriver>=0.1\n"))


def test_case4_foreign_entry_point_name(tmp_path: Path) -> None:
    m = manifest("aaa")
    mem = valid_wheel_members(m)
    mem["udriver_aaa-0.1.0.dist-info/entry_points.txt"] += b"edu = beta_mod:Evil\n"
    refused(wheel(tmp_path, m, mem), "entry-points", "entry points ['edu'] besides the "
            "driver's own `aaa`")


def test_console_scripts_group(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem["udriver_edu-0.1.0.dist-info/entry_points.txt"] += b"[console_scripts]\nls = x:y\n"
    refused(wheel(tmp_path, members=mem), "entry-points", "groups ['console_scripts']")


def test_entry_point_disagrees_with_manifest(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem["udriver_edu-0.1.0.dist-info/entry_points.txt"] = b"[udriver.drivers]\nedu = x:Y\n"
    refused(wheel(tmp_path, members=mem), "entry-points",
            "`edu` is 'x:Y', the manifest says 'udriver_edu:Driver'")


def test_entry_points_lines_that_parse_differently(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem["udriver_edu-0.1.0.dist-info/entry_points.txt"] += b"garbage line\n"
    refused(wheel(tmp_path, members=mem), "entry-points", "neither `[group]`")


def test_second_distribution(tmp_path: Path) -> None:
    w = wheel(tmp_path, members=with_member("other-1.0.dist-info/entry_points.txt",
                                            b"[udriver.drivers]\nedu = x:Y\n"))
    refused(w, "dist-info", "'other-1.0.dist-info'")


def test_pth_file(tmp_path: Path) -> None:
    refused(wheel(tmp_path, members=with_member("evil.pth", b"import os\n")), "dist-info",
            "'evil.pth'")


def test_record_mismatch(tmp_path: Path) -> None:
    w = wheel(tmp_path)
    with zipfile.ZipFile(w, "a") as zf:
        zf.writestr("udriver_edu/extra.py", b"x\n")
    refused(w, "record", "udriver_edu/extra.py is not listed")


def test_metadata_names_another_distribution(tmp_path: Path) -> None:
    mem = valid_wheel_members(M)
    mem["udriver_edu-0.1.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: other\n" \
                                                  b"Version: 0.1.0\n"
    refused(wheel(tmp_path, members=mem), "metadata", "`Name: other`")


def test_pure_wheel_with_native_tags(tmp_path: Path) -> None:
    refused(wheel(tmp_path, name="udriver_edu-0.1.0-cp311-abi3-manylinux_2_17_x86_64.whl"),
            "tags", "not tagged py3-none-any")


def test_abi_the_runtime_does_not_provide(tmp_path: Path) -> None:
    m = manifest(abi=(2, 0))
    refused(write_wheel(tmp_path / wheel_name(m), valid_wheel_members(m), record_for=m),
            "abi", "2.0")


# ----------------------------------------------------------------------- deb rules


def deb_with(tmp: Path, *extra: Member, m=M, **kw) -> Path:  # type: ignore[no-untyped-def]
    return write_deb(tmp, m, with_parents([*valid_deb_members(m)[1:], *extra]), **kw)


@pytest.mark.parametrize("script", ["preinst", "postinst", "prerm", "postrm", "config",
                                    "triggers"])
def test_maintainer_script(tmp_path: Path, script: str) -> None:
    d = write_deb(tmp_path, M, control_extra=[Member(f"./{script}", b"#!/bin/sh\nid\n",
                                                     mode=0o755)])
    refused(d, "maintainer-script", f"maintainer script `{script}`", "runs them as root")


def test_conffiles_control_member(tmp_path: Path) -> None:
    d = write_deb(tmp_path, M, control_extra=[Member("./conffiles", b"/etc/x\n")])
    refused(d, "control-member", "'conffiles'", "only `control` and `md5sums`")


@pytest.mark.parametrize("field", ["Essential", "Pre-Depends", "Replaces", "Provides",
                                   "Conflicts", "Breaks", "SHA256", "Size", "MD5sum",
                                   "Filename", "Protected", "Recommends"])
def test_control_field_not_on_the_allow_list(tmp_path: Path, field: str) -> None:
    d = write_deb(tmp_path, M, control={**valid_control(M), field: "yes"})
    refused(d, "control-field", f"control field `{field}` is not allowed")


def test_control_field_missing(tmp_path: Path) -> None:
    c = valid_control(M)
    del c["Maintainer"]
    refused(write_deb(tmp_path, M, control=c), "control-field", "missing: ['Maintainer']")


@pytest.mark.parametrize(("field", "value", "rule", "fragment"), [
    ("Package", "udriver-driver-other", "control-field", "should be `Package: udriver-driver-edu`"),
    ("Version", "0.2.0-1", "control-field", "should be `Version: 0.1.0-1`"),
    ("Version", "x!y", "version", "not a Debian version"),
    ("Depends", "udriver (>= 0.1), udriver (<< 2), openssh-server", "depends", "openssh-server"),
    ("Architecture", "amd64", "control-field", "pure Python: all"),
    ("Maintainer", "nobody", "control-field", "not `Name <email>`"),
    ("Installed-Size", "-1", "control-field", "not a number"),
    ("Modaliases", "udriver(pci:v*d*sv*sd*bc*sc*i*)", "control-field", "should be `Modaliases"),
    ("Section", "admin", "control-field", "should be `Section: misc`"),
])
def test_control_field_value(tmp_path: Path, field: str, value: str, rule: str,
                             fragment: str) -> None:
    c = {**valid_control(M), field: value}
    refused(write_deb(tmp_path, M, control=c, filename="udriver-driver-edu_0.1.0-1_all.deb"),
            rule, fragment)


def test_control_with_two_paragraphs(tmp_path: Path) -> None:
    raw = control_text(valid_control(M)) + b"\nPackage: second\n"
    refused(write_deb(tmp_path, M, control=raw, filename="udriver-driver-edu_0.1.0-1_all.deb"),
            "control-field", "more than one paragraph")


@pytest.mark.parametrize(("mode", "why"), [(0o4755, "setuid"), (0o2755, "setgid"),
                                           (0o1755, "sticky"), (0o666, "world-writable"),
                                           (0o600, "allowed: 0644, 0755")])
def test_file_mode(tmp_path: Path, mode: int, why: str) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/udriver_edu/x", b"x", mode=mode))
    refused(d, "mode", f"has mode {mode:04o}", why)


def test_directory_mode(tmp_path: Path) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/tmp/", kind="dir", mode=0o1777))
    refused(d, "mode", "has mode 1777 (sticky, world-writable); allowed: 0755")


@pytest.mark.parametrize(("uid", "uname"), [(1000, "root"), (0, "nobody")])
def test_owner_not_root(tmp_path: Path, uid: int, uname: str) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/udriver_edu/x", b"x",
                                  uid=uid, uname=uname))
    refused(d, "owner", "not root:root")


@pytest.mark.parametrize(("kind", "what"), [("symlink", "a symlink"), ("hardlink", "a hard link"),
                                            ("chr", "a device"), ("blk", "a device"),
                                            ("fifo", "a FIFO")])
def test_member_type(tmp_path: Path, kind: str, what: str) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/udriver_edu/x", kind=kind,
                                  linkname="/etc/shadow" if "link" in kind else ""))
    refused(d, "member-type", f"is {what}")


@pytest.mark.parametrize("name", ["./usr/../../etc/cron.d/evil", "/etc/cron.d/evil"])
def test_deb_unsafe_member_name(tmp_path: Path, name: str) -> None:
    d = write_deb(tmp_path, M, [*valid_deb_members(M), Member(name, b"* * * * * root x\n")])
    refused(d, "member-name", "unsafe member name in data.tar.xz", repr(name))


@pytest.mark.parametrize("path", ["etc/cron.d/evil", "usr/lib/udriver/drivers/other/x.py",
                                  "usr/lib/udev/rules.d/99-evil.rules", "usr/bin/udriver",
                                  "usr/share/udriver/drivers/other.json"])
def test_file_outside_the_drivers_paths(tmp_path: Path, path: str) -> None:
    refused(deb_with(tmp_path, Member(path, b"x\n")), "path", f"/{path}")


def test_udev_rule_not_the_generated_one(tmp_path: Path) -> None:
    rule = udev_rules_text(M) + b'ACTION=="add", RUN+="/bin/sh -c id"\n'
    data = [mem if not mem.name.endswith(".rules") else Member(mem.name, rule)
            for mem in valid_deb_members(M)]
    refused(write_deb(tmp_path, M, data), "udev-rule", "not exactly the rule udriver generates")


def test_md5sums_wrong(tmp_path: Path) -> None:
    refused(write_deb(tmp_path, M, md5=b"0" * 32 + b"  usr/share/udriver/drivers/edu.json\n"),
            "md5sums", "wrong or missing for")


def test_member_before_its_directory(tmp_path: Path) -> None:
    data = [mem for mem in valid_deb_members(M) if mem.name != "./usr/share/doc/udriver-driver-edu/"]
    refused(write_deb(tmp_path, M, data), "layout", "comes before its directory")


def test_pax_xattr_header(tmp_path: Path) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/udriver_edu/x", b"x",
                                  pax={"SCHILY.xattr.security.capability": "x"}))
    refused(d, "pax-header", "SCHILY.xattr.security.capability")


def test_deb_bomb(tmp_path: Path) -> None:
    d = deb_with(tmp_path, Member("usr/lib/udriver/drivers/edu/udriver_edu/z", bytes(64 * MIB)))
    refused(d, "bomb", "archive bomb: data.tar.xz unpacks to more than", "ratio over 100:1")


def test_deb_file_name(tmp_path: Path) -> None:
    refused(write_deb(tmp_path, M, filename="udriver-driver-edu_0.2.0-1_all.deb"), "file-name",
            "file name disagrees with the control data (expected "
            "'udriver-driver-edu_0.1.0-1_all.deb')")


def test_deb_without_id_table_is_a_manifest_error(tmp_path: Path) -> None:
    data = [mem for mem in valid_deb_members(M) if not mem.name.endswith("edu.json")]
    with pytest.raises(GateIdTableError, match="no ID table under /usr/share/udriver/drivers/"):
        admit(write_deb(tmp_path, M, data))


@pytest.mark.parametrize(("members", "fragment"), [
    ([("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", b""),
      ("_evil", b"")], "exactly debian-binary"),
    ([("control.tar.xz", b""), ("debian-binary", b"2.0\n"), ("data.tar.xz", b"")],
     "in that order"),
    ([("debian-binary", b"3.0\n"), ("control.tar.xz", b""), ("data.tar.xz", b"")],
     "debian-binary is b'3.0\\n'"),
    ([("debian-binary", b"2.0\n"), ("control.tar.zst", b""), ("data.tar.zst", b"")],
     "control.tar.{gz,xz}"),
])
def test_ar_structure(tmp_path: Path, members: list[tuple[str, bytes]], fragment: str) -> None:
    refused(write_deb(tmp_path, M, ar_members=members), "deb-format", fragment)


def test_not_a_deb(tmp_path: Path) -> None:
    f = tmp_path / "udriver-driver-edu_0.1.0-1_all.deb"
    f.write_bytes(b"hello")
    refused(f, "deb-format", "missing `!<arch>`")


def test_deb_embedded_entry_point_for_another_driver(tmp_path: Path) -> None:
    ep = "usr/lib/udriver/drivers/edu/udriver_edu-0.1.0.dist-info/entry_points.txt"
    data = [mem if mem.name != ep else Member(ep, mem.data + b"nvme = evil:X\n")
            for mem in valid_deb_members(M)]
    refused(write_deb(tmp_path, M, data), "entry-points", "['nvme'] besides")


def test_deb_embedded_requires_dist(tmp_path: Path) -> None:
    md = "usr/lib/udriver/drivers/edu/udriver_edu-0.1.0.dist-info/METADATA"
    data = [mem if mem.name != md else Member(md, mem.data + b"Requires-Dist: requests\n")
            for mem in valid_deb_members(M)]
    refused(write_deb(tmp_path, M, data), "requires-dist", "`Requires-Dist: requests`")


def test_deb_duplicate_member(tmp_path: Path) -> None:
    d = deb_with(tmp_path, Member("usr/share/doc/udriver-driver-edu/copyright", b"again\n"))
    refused(d, "member-name", "has 'usr/share/doc/udriver-driver-edu/copyright' twice")


# ----------------------------------------------------------------------- udriver check


def test_udriver_check_prints_one_failed_line_per_gate_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from udriver.cli import main
    d = write_deb(tmp_path, M, control={**valid_control(M), "Essential": "yes"},
                  control_extra=[Member("./postinst", b"#!/bin/sh\n", mode=0o755)])
    assert main(["check", str(d)]) == 1
    failed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAILED gate")]
    assert failed == [
        ("FAILED gate/maintainer-script: maintainer script `postinst`: a driver .deb may not "
         "carry maintainer scripts (dpkg runs them as root on every machine)"),
        ("FAILED gate/control-field: control field `Essential` is not allowed: a driver .deb "
         "has only the fields `udriver build` writes (Package, Version, Architecture, "
         "Maintainer, Installed-Size, Depends, Section, Priority, Modaliases, Description)")]


def test_udriver_check_passes_the_gate_for_a_good_wheel(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from udriver.cli import main
    main(["check", str(wheel(tmp_path))])
    assert "PASSED gate (a repository would accept it)" in capsys.readouterr().out.splitlines()
