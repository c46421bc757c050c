"""`udriver-repo` CLI: the exact text a user sees, and exit codes."""

from __future__ import annotations

import json

import pytest
from udriver_repo import Repository
from udriver_repo.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init(tmp_path, capsys):
    d = tmp_path / "r"
    code, out, err = _run(capsys, "init", str(d), "--expiry", "timestamp=12h")
    try:
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert lines[0] == f"initialised repository {d.resolve()}"
        assert lines[1] == f"bootstrap root: {d.resolve()}/public/keys/root.json"
        assert lines[2].startswith(f"apt key: {d.resolve()}/public/keys/apt.asc (")
        cfg = json.loads((d / "config.json").read_bytes())
        assert cfg["expiry_seconds"]["timestamp"] == 12 * 3600
        code, out, err = _run(capsys, "init", str(d))
        assert (code, out, err) == (1, "", f"error: already a repository: {d}\n")
    finally:
        Repository.open(d).stop_agent()


def test_init_bad_expiry(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["init", str(tmp_path / "r"), "--expiry", "forever=1d"])
    assert e.value.code == 2
    assert "expected ROLE=DURATION" in capsys.readouterr().err


def test_vendor_add_list_revoke(repo, capsys):
    r = str(repo.path)
    code, out, err = _run(capsys, "vendor", "add", "newco", "--pci-vendor", "10EC",
                          "--pci-vendor", "14e4", "--repo", r)
    assert code == 0 and err == ""
    first, token = out.splitlines()
    assert first == "vendor newco added; upload token (shown once, store it now):"
    assert repo.authenticate(token).name == "newco"
    code, out, _ = _run(capsys, "vendor", "list", "--repo", r)
    assert out == ("acme\t1af4,8086\n"
                   "classy\t1b36\tclass-grant\n"
                   "newco\t10ec,14e4\n"
                   "qemu\t1234\n")
    assert _run(capsys, "vendor", "revoke", "newco", "--repo", r) == \
        (0, "vendor newco revoked\n", "")
    code, out, _ = _run(capsys, "vendor", "list", "--json", "--repo", r)
    newco = next(v for v in json.loads(out) if v["name"] == "newco")
    assert newco["revoked"] is True and newco["pci_vendors"] == ["10ec", "14e4"]


def test_vendor_add_taken_id(repo, capsys):
    assert _run(capsys, "vendor", "add", "x", "--pci-vendor", "1234", "--repo", str(repo.path)) \
        == (1, "", "error: PCI vendor 1234 already belongs to 'qemu'\n")


def test_vendor_add_bad_id_is_a_usage_error(repo, capsys):
    with pytest.raises(SystemExit) as e:
        main(["vendor", "add", "x", "--pci-vendor", "12345", "--repo", str(repo.path)])
    assert e.value.code == 2
    assert "expected 4 hex digits (e.g. 1234), got '12345'" in capsys.readouterr().err


def test_publish_then_unchanged_then_verify(repo, edu_files, capsys):
    r = str(repo.path)
    files = [str(f) for f in edu_files]
    assert _run(capsys, "publish", *files, "--vendor", "qemu", "--repo", r) == \
        (0, "published: udriver-edu 0.1.0 (edu) -> index/1234/8.json\n", "")
    assert _run(capsys, "publish", *files, "--vendor", "qemu", "--repo", r) == \
        (0, "unchanged: udriver-edu 0.1.0 (edu) -> index/1234/8.json\n", "")
    code, out, err = _run(capsys, "verify", "--repo", r)
    assert code == 0 and err == ""
    assert out.startswith("OK: root=1 timestamp=")
    assert out.endswith("; 1 index(es), 2 file(s), 1 apt package(s) verified\n")


def test_publish_out_of_scope(repo, edu_files, capsys):
    code, out, err = _run(capsys, "publish", *map(str, edu_files), "--vendor", "acme",
                          "--repo", str(repo.path))
    assert code == 1 and out == ""
    assert err.startswith("error: udriver_edu-0.1.0-py3-none-any.whl, "
                          "udriver-driver-edu_0.1.0-1_all.deb: outside the scope of vendor "
                          "'acme' (owns 1af4, 8086): pattern")


def test_publish_needs_a_vendor(repo, edu_files, capsys, monkeypatch):
    monkeypatch.delenv("UDRIVER_REPO_VENDOR", raising=False)
    assert _run(capsys, "publish", str(edu_files[0]), "--repo", str(repo.path)) == \
        (1, "", "error: `--vendor` is required (or set UDRIVER_REPO_VENDOR)\n")


def test_repo_from_environment(repo, capsys, monkeypatch):
    monkeypatch.setenv("UDRIVER_REPO_DIR", str(repo.path))
    code, out, _ = _run(capsys, "vendor", "list")
    assert code == 0 and "qemu\t1234" in out


def test_not_a_repository(tmp_path, capsys):
    assert _run(capsys, "refresh", "--repo", str(tmp_path)) == \
        (1, "", f"error: not a udriver repository (no valid config.json): {tmp_path}\n")


def test_verify_failure_exit_code(published_repo, capsys):
    wheel = next((published_repo.public / "targets/drivers/1234").glob("*.whl"))
    wheel.write_bytes(b"tampered")
    code, out, _ = _run(capsys, "verify", "--repo", str(published_repo.path))
    assert code == 1
    assert out.splitlines()[0].startswith("FAILED index/1234/8.json: LengthOrHashMismatchError")
    assert out.splitlines()[-1].startswith("FAILED: root=1 ")


def test_rotate_key_and_refresh(repo, capsys):
    r = str(repo.path)
    assert _run(capsys, "rotate-key", "qemu", "--repo", r) == (0, "rotated the `qemu` key\n", "")
    code, out, _ = _run(capsys, "refresh", "--repo", r)
    assert code == 0 and out.startswith("refreshed: timestamp version ")
    assert _run(capsys, "rotate-key", "nope", "--repo", r)[2].startswith(
        "error: unknown role 'nope'")


def test_serve_defaults_to_loopback(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "8080" in out
