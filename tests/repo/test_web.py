"""Issue 4, acceptance 9: the read-only web page, rendered by headless Chromium (Debian's).

Drivers are published through the upload API of the real server; Chromium loads /ui/ and
dumps the DOM; the test asserts publishers, drivers, versions, modaliases and the pci.ids
device names appear. Pure rendering helpers are tested directly as well.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_server_helpers import ServerThread, copy_repo
from udriver_repo.server import create_app
from udriver_repo.server._catalog import CatalogView
from udriver_repo.server._gateway import VendorView
from udriver_repo.server._pciids import PciNames
from udriver_repo.server._web import describe_pattern, render_page

from udriver.repoformat import IndexEntry
from udriver_vm.repofactory import make_driver

PCI_IDS = Path("/usr/share/misc/pci.ids")
VIRTIO_NET = "pci:v00001AF4d00001000sv*sd*bc*sc*i*"
E1000E = "pci:v00008086d000010D3sv*sd*bc*sc*i*"
EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
NVME = "pci:v*d*sv*sd*bc01sc08i02*"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(repo_template, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    base = Path(tempfile.mkdtemp(prefix="udr-web-"))
    repo = copy_repo(repo_template.path, base / "repo")
    srv = ServerThread(create_app(repo)).start()
    dist = tmp_path_factory.mktemp("webdist")
    uploads = [
        ("qemu", make_driver(dist / "a", "udriver-edu", driver="edu")[1]),
        ("qemu", make_driver(dist / "b", "udriver-edu", "0.2.0", driver="edu", deb=False)[1]),
        ("acme", make_driver(dist / "c", "udriver-vnet", driver="vnet", deb=False,
                             modaliases=(VIRTIO_NET, E1000E))[1]),
        ("classy", make_driver(dist / "d", "udriver-anynvme", driver="anynvme", deb=False,
                               modaliases=(NVME,))[1]),
    ]
    for vendor, files in uploads:
        for f in files:
            r = requests.put(f"{srv.url}/api/v1/packages/{f.name}", data=f.read_bytes(),
                             headers={"Authorization": f"Bearer {repo_template.tokens[vendor]}"},
                             timeout=120)
            assert r.status_code == 201, r.text
    yield srv.url
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def _dump_dom(url: str, tmp_path: Path) -> str:
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (it is in .ci/setup's apt list)")
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    out = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", url],
        capture_output=True, timeout=120, check=True)
    return html.unescape(out.stdout.decode())


def test_page_in_headless_chromium_lists_drivers_and_devices(site, tmp_path):
    dom = _dump_dom(f"{site}/ui/", tmp_path)
    assert "<h1>udriver driver repository</h1>" in dom
    for text in ["qemu", "acme", "classy",                         # publishers
                 "edu", "udriver-edu", "vnet", "anynvme",          # drivers
                 "0.1.0", "0.2.0",                                 # versions
                 EDU, VIRTIO_NET, E1000E,                          # modalias patterns
                 "1af4:1000 Red Hat, Inc. Virtio network device",  # pci.ids names
                 "8086:10d3 Intel Corporation 82574L Gigabit Network Connection",
                 "Non-Volatile memory controller"]:
        assert text in dom, f"{text!r} missing from the page"
    # the edu driver is listed once, with both versions, newest first
    assert dom.count("<b>edu</b>") == 1
    row = dom[dom.index("<b>edu</b>"):]
    row = row[:row.index("</tr>")]
    assert row.index("<li>0.2.0") < row.index("<li>0.1.0"), row


def test_page_has_no_script_and_is_not_cached(site):
    r = requests.get(f"{site}/ui/", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<script" not in r.text.lower()
    assert r.headers["Cache-Control"] == "no-cache"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_ui_without_slash_redirects(site):
    r = requests.get(f"{site}/ui", allow_redirects=False, timeout=30)
    assert r.status_code == 301 and r.headers["Location"] == "/ui/"


# ------------------------------------------------------------------ pure rendering


@pytest.mark.skipif(not PCI_IDS.is_file(), reason="pci.ids not installed (Debian `pci.ids`)")
@pytest.mark.parametrize("pattern,expected", [
    (VIRTIO_NET, "1af4:1000 Red Hat, Inc. Virtio network device"),
    ("pci:v00001AF4d*sv*sd*bc*sc*i*", "1af4:* any device of Red Hat, Inc."),
    (NVME, "any class 01:08 Non-Volatile memory controller"),
    ("pci:v00001234d000011E8sv*sd*bc*sc*i*", "1234:11e8 unknown vendor unknown device"),
    ("pci:v00008086d000010D3sv00001234sd00000001bc*sc*i*",
     "8086:10d3 Intel Corporation 82574L Gigabit Network Connection, subsystem 1234:0001"),
    ("not-a-pattern", "not-a-pattern"),
])
def test_describe_pattern(pattern, expected):
    assert describe_pattern(pattern, PciNames(PCI_IDS)) == expected


def test_render_escapes_vendor_controlled_text():
    evil = IndexEntry("<script>alert(1)</script>", "x<b>", "1.0", (1, 0),
                      ("pci:v00001234d00000001sv*sd*bc*sc*i*",), {"wheel": "drivers/1234/x"}, "1234")
    page = render_page([VendorView("v<i>", (0x1234,), False, False)],
                       CatalogView(7, {"1234": [evil]}), PciNames(Path("/nonexistent")))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "x&lt;b&gt;" in page and "v&lt;i&gt;" in page


def test_render_without_pci_ids_shows_bare_ids():
    e = IndexEntry("udriver-vnet", "vnet", "1.0", (1, 0), (VIRTIO_NET,), {}, "1af4")
    page = render_page([VendorView("acme", (0x1AF4,), False, True)],
                       CatalogView(3, {"1af4": [e]}), PciNames(Path("/nonexistent")))
    assert "1af4:1000 unknown vendor unknown device" in page
    assert "<b>revoked</b>" in page and "Snapshot version 3" in page


def test_render_empty_repository():
    page = render_page([], CatalogView(0, {}), PciNames(Path("/nonexistent")))
    assert "No vendors yet." in page
