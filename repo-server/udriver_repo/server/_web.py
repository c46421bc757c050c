"""The read-only web page at `/ui/`: vendors -> drivers -> supported devices and versions.

Rules:
- Plain HTML and CSS, no JavaScript, no forms, no external resources; every value from
  the repository is escaped (`html.escape`) because vendors choose driver names, after
  `escape_text` (control, bidi and other format characters written as `\\u202e`...), so
  that a name cannot reorder or hide the text around it.
- The content is what clients see: `_catalog` reads the committed TUF tree; publishers
  come from the core's vendor table; device names from pci.ids (`_pciids`).
- A driver listed in several of one publisher's PCI vendor indexes is shown once.
- Tokens, hashes of tokens and the audit log are never shown.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from html import escape as _html_escape
from typing import Any

from aiohttp import web
from packaging.version import InvalidVersion, Version

from udriver.abi import format_abi
from udriver.errors import ManifestError
from udriver.modalias import parse_pattern
from udriver.repoformat import IndexEntry

from .._audit import escape_text
from ._catalog import CatalogView
from ._gateway import VendorView
from ._pciids import PciNames
from ._state import STATE, ServerState, app_key

__all__ = ["NAMES", "describe_pattern", "handle_ui", "render_page"]


def escape(text: str) -> str:
    """HTML-escaped, with control and bidi characters made visible (`escape_text`)."""
    return _html_escape(escape_text(text))

NAMES: Any = app_key("udriver_pci_names", PciNames)

_CSS = """
body{font-family:sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .6em;
vertical-align:top;border-bottom:1px solid #eee}code{font-size:.9em}.muted{color:#777}
"""


def describe_pattern(pattern: str, names: PciNames) -> str:
    """A human description of one modalias pattern, with pci.ids names (plain text)."""
    try:
        p = parse_pattern(pattern)
    except ManifestError:
        return pattern
    parts: list[str] = []
    if p.vendor is not None:
        vname = names.vendor(p.vendor) or "unknown vendor"
        if p.device is not None:
            dname = names.device(p.vendor, p.device) or "unknown device"
            parts.append(f"{p.vendor:04x}:{p.device:04x} {vname} {dname}")
        else:
            parts.append(f"{p.vendor:04x}:* any device of {vname}")
    if p.base_class is not None:
        cname = names.klass(p.base_class, p.subclass) if p.subclass is not None else None
        cname = cname or names.klass(p.base_class) or "unknown class"
        sub = f"{p.subclass:02x}" if p.subclass is not None else "*"
        prefix = "" if parts else "any "
        parts.append(f"{prefix}class {p.base_class:02x}:{sub} {cname}")
    if p.subvendor is not None or p.subdevice is not None:
        sv = f"{p.subvendor:04x}" if p.subvendor is not None else "*"
        sd = f"{p.subdevice:04x}" if p.subdevice is not None else "*"
        parts.append(f"subsystem {sv}:{sd}")
    return ", ".join(parts) or "any PCI device"


def _driver_rows(entries: list[IndexEntry], names: PciNames) -> str:
    by_driver: dict[tuple[str, str], dict[str, IndexEntry]] = defaultdict(dict)
    for e in entries:
        by_driver[(e.driver, e.package)][e.version] = e
    rows = []
    for (driver, package), versions in sorted(by_driver.items()):
        newest = versions[max(versions, key=_version_key)]
        devices = "".join(f"<li><code>{escape(m)}</code><br>{escape(describe_pattern(m, names))}"
                          f"</li>" for m in newest.modaliases)
        vers = "".join(
            f"<li>{escape(v)} <span class=muted>(ABI {escape(format_abi(e.abi))}; "
            f"{escape(', '.join(sorted(e.files)) or 'no files')})</span></li>"
            for v, e in sorted(versions.items(), key=lambda kv: _version_key(kv[0]),
                               reverse=True))
        rows.append(f"<tr class=driver><td><b>{escape(driver)}</b><br>"
                    f"<span class=muted>{escape(package)}</span></td>"
                    f"<td><ul>{devices}</ul></td><td><ul>{vers}</ul></td></tr>")
    if not rows:
        return "<p class=muted>No drivers published yet.</p>"
    return ("<table><tr><th>Driver</th><th>Supported devices</th><th>Versions</th></tr>"
            + "".join(rows) + "</table>")


def _version_key(v: str) -> tuple[int, object]:
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def render_page(vendors: list[VendorView], view: CatalogView, names: PciNames) -> str:
    """The whole page as an HTML string. Pure: no I/O beyond pci.ids names."""
    sections = []
    owned: set[str] = set()
    for v in sorted(vendors, key=lambda v: v.name):
        ids = [f"{x:04x}" for x in v.pci_vendors]
        owned.update(ids)
        entries = [e for i in ids for e in view.indexes.get(i, [])]
        id_text = ", ".join(f"<code>{i}</code> {escape(names.vendor(int(i, 16)) or '')}"
                            for i in ids) or "none"
        # The class index is one shared role: its drivers cannot be attributed to a
        # publisher from the tree, so they get their own section below.
        flags = (" · may publish class-wide drivers (listed under <a href=\"#class\">"
                 "Class-wide drivers</a>)" if v.class_grant else "")
        flags += " · <b>revoked</b>" if v.revoked else ""
        sections.append(
            f"<section class=vendor id=\"vendor-{escape(v.name)}\"><h2>{escape(v.name)}</h2>"
            f"<p>PCI vendors: {id_text}{flags}</p>{_driver_rows(entries, names)}</section>")
    if view.indexes.get("class"):
        sections.append("<section class=vendor id=class><h2>Class-wide drivers</h2>"
                        + _driver_rows(view.indexes["class"], names) + "</section>")
    orphans = [e for i, es in sorted(view.indexes.items()) if i not in owned and i != "class"
               for e in es]
    if orphans:
        sections.append("<section class=vendor id=other><h2>Other indexes</h2>"
                        + _driver_rows(orphans, names) + "</section>")
    count = len({(e.package, e.version) for es in view.indexes.values() for e in es})
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>udriver repository</title>"
        f"<style>{_CSS}</style></head><body><h1>udriver driver repository</h1>"
        f"<p class=muted>Snapshot version {view.snapshot_version} · {count} driver "
        f"version(s) · {len(vendors)} vendor(s). Metadata: <a href=\"/metadata/timestamp.json\">"
        "timestamp.json</a> · apt key: <a href=\"/keys/apt.asc\">keys/apt.asc</a></p>"
        + ("".join(sections) or "<p class=muted>No vendors yet.</p>")
        + "</body></html>")


async def handle_ui(request: web.Request) -> web.Response:
    """GET /ui/: render the page from the current committed state."""
    state: ServerState = request.app[STATE]
    loop = asyncio.get_running_loop()
    vendors = await state.gateway.vendors()
    view = await loop.run_in_executor(None, state.catalog.view)
    names: PciNames = request.app[NAMES]
    html = await loop.run_in_executor(None, render_page, vendors, view, names)
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache",
                                 "Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'",
                                 "X-Content-Type-Options": "nosniff"})

