"""Pure checks of upload file names (`udriver_repo.server._names`): grammar and agreement."""

from __future__ import annotations

import pytest
from udriver_repo.server._names import check_deb_name, check_wheel_name, parse_upload_name

from udriver.errors import PackageError


@pytest.mark.parametrize("name,kind", [
    ("udriver_edu-0.1.0-py3-none-any.whl", "wheel"),
    ("udriver_edu-0.1.0-1-py3-none-any.whl", "wheel"),
    ("udriver_edu_c-1.2.3rc1-cp311-abi3-manylinux_2_17_x86_64.whl", "wheel"),
    ("udriver-driver-edu_0.1.0_all.deb", "deb"),
    ("udriver-driver-edu_0.1.0-1_amd64.deb", "deb"),
    ("udriver-driver-edu_1.0+git20260101~rc1-1_all.deb", "deb"),
])
def test_valid_names(name, kind):
    assert parse_upload_name(name).kind == kind


@pytest.mark.parametrize("name", [
    "", "x" * 201 + ".whl", "../udriver_edu-0.1.0-py3-none-any.whl",
    "dir/udriver_edu-0.1.0-py3-none-any.whl", "/abs-0.1-py3-none-any.whl",
    ".hidden-0.1-py3-none-any.whl", "udriver_edu-0.1.0-py3-none-any.whl\x00.deb",
    "udriver_edu-0.1.0.whl", "udriver_edu-0.1.0-py3-none-any.zip", "edu.tar.gz",
    "Udriver-Driver_0.1_all.deb", "udriver-driver-edu_1:0.1_all.deb",
    "udriver-driver-edu_0.1_all.deb/..", "udriver-driver-edu__all.deb",
    "udriver_edu-0.1.0-py3-none-any.whl ", "udriver_edu-0.1.0-py3-none-any.whl\n",
    "a\\b-0.1-py3-none-any.whl",
])
def test_invalid_names(name):
    with pytest.raises(PackageError, match="Invalid"):
        parse_upload_name(name)


def test_wheel_name_agrees():
    check_wheel_name("udriver_edu-0.1.0-py3-none-any.whl", "udriver-edu", "0.1.0")
    check_wheel_name("Udriver_Edu-0.1-py3-none-any.whl", "udriver.edu", "0.1.0")  # normalised


def test_wheel_name_with_other_distribution():
    with pytest.raises(PackageError, match=r"distribution 'udriver-evil' but udriver.json "
                                           r"`package` is 'udriver-edu'"):
        check_wheel_name("udriver_evil-0.1.0-py3-none-any.whl", "udriver-edu", "0.1.0")


def test_wheel_name_with_other_version():
    with pytest.raises(PackageError, match=r"version '0.2.0' but udriver.json `version`"):
        check_wheel_name("udriver_edu-0.2.0-py3-none-any.whl", "udriver-edu", "0.1.0")


def test_wheel_name_collects_both_problems():
    with pytest.raises(PackageError) as e:
        check_wheel_name("udriver_evil-0.2.0-py3-none-any.whl", "udriver-edu", "0.1.0")
    assert "distribution" in str(e.value) and "version" in str(e.value)


CONTROL = {"Package": "udriver-driver-edu", "Version": "0.1.0-1", "Architecture": "all"}


def test_deb_name_agrees():
    check_deb_name("udriver-driver-edu_0.1.0-1_all.deb", CONTROL)
    check_deb_name("udriver-driver-edu_0.1.0-1_all.deb", {**CONTROL, "Version": "2:0.1.0-1"})


@pytest.mark.parametrize("name,field", [
    ("udriver-driver-evil_0.1.0-1_all.deb", "Package"),
    ("udriver-driver-edu_0.1.1-1_all.deb", "Version"),
    ("udriver-driver-edu_0.1.0-1_amd64.deb", "Architecture"),
])
def test_deb_name_disagrees(name, field):
    with pytest.raises(PackageError, match=f"control `{field}`"):
        check_deb_name(name, CONTROL)
