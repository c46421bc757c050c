"""The one PCI-address grammar (`udriver.pci._address`) and every entry point that reads one.

Each rejection path has its own case with the exact message; then every place that takes
an address from outside (the CLI's `bind`, `unbind`, `run --device`, `supervise --device`,
`autobind`, `install --device`, the status records, unit and log names, TAP names,
persisted binds, the runtime) is fed the same spellings and must give the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from udriver import _devstate
from udriver.cli import main
from udriver.errors import BridgeError, DeviceError
from udriver.pci import PciAddress, is_bdf, normalise_bdf, parse_bdf
from udriver.pci._persist import persist_bind
from udriver.runtime._sysfs import normalise_bdf as runtime_normalise_bdf
from udriver.supervise._autobind import log_path, unit_name
from udriver.supervise._tap import interface_name

MESSAGE = "Invalid PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:06.0): {!r}"


@pytest.mark.parametrize("given,canon", [
    ("0000:00:06.0", "0000:00:06.0"),
    ("00:06.0", "0000:00:06.0"),  # lspci's short form: domain 0
    ("0000:3B:1F.7", "0000:3b:1f.7"),  # upper-case hex
    ("0001:ff:1f.7", "0001:ff:1f.7"),  # the largest bus, device and function
    ("10000:01:00.0", "10000:01:00.0"),  # a VMD domain: five digits, as the kernel prints it
    ("ffffffff:00:00.0", "ffffffff:00:00.0"),  # the widest domain
    ("00000:00:03.0", "0000:00:03.0"),  # a zero-padded domain: the kernel's %04x spelling
])
def test_accepted_spellings_and_their_canonical_form(given: str, canon: str) -> None:
    assert normalise_bdf(given) == canon
    assert is_bdf(canon) and is_bdf(given) == (given == canon)


def test_parse_gives_the_fields() -> None:
    a = parse_bdf("10000:3a:1f.7")
    assert a == PciAddress(0x10000, 0x3A, 0x1F, 7) and str(a) == "10000:3a:1f.7"


REJECTED = {
    "empty": "",
    "domain of three digits": "000:00:03.0",
    "domain of nine digits": "000000000:00:03.0",
    "domain not hex": "000g:00:03.0",
    "bus over ff": "0000:100:03.0",
    "bus of one digit": "0000:0:03.0",
    "bus not hex": "0000:0x:03.0",
    "device over 1f": "0000:00:20.0",
    "device of one digit": "0000:00:3.0",
    "function over 7": "0000:00:03.8",
    "function not a digit": "0000:00:03.a",
    "dashes": "0000-00-03.0",
    "colon before the function": "0000:00:03:0",
    "dot after the domain": "0000.00:03.0",
    "trailing text": "0000:00:03.0x",
    "a path after it": "0000:00:03.0/../x",
    "a sysfs path": "/sys/bus/pci/devices/0000:00:03.0",
    "trailing newline": "0000:00:03.0\n",
    "leading blank": " 0000:00:03.0",
    "a second function": "0000:00:03.0.1",
}


@pytest.mark.parametrize("bad", REJECTED.values(), ids=REJECTED.keys())
def test_each_malformed_address_is_rejected(bad: str) -> None:
    with pytest.raises(DeviceError) as ei:
        parse_bdf(bad)
    assert str(ei.value) == MESSAGE.format(bad)
    assert not is_bdf(bad)


def test_a_non_string_is_rejected() -> None:
    with pytest.raises(DeviceError, match="Invalid PCI address"):
        parse_bdf(3)  # type: ignore[arg-type]


# -- every entry point agrees -------------------------------------------------------------

@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in [("UDRIVER_STATE_DIR", "var"), ("UDRIVER_RUN_DIR", "run"),
                     ("UDRIVER_CONFIG_DIR", "etc"), ("UDRIVER_SYSFS_ROOT", "root")]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("UDRIVER_BIND_RULES", str(tmp_path / "61-udriver-bind.rules"))
    (tmp_path / "root/sys/bus/pci/devices").mkdir(parents=True)
    return tmp_path


SPELLINGS = ["0000:00:04.0", "00:04.0", "10000:01:00.0", "0000:3B:1F.7",
             *REJECTED.values()]
CLI = [["bind", "{}"], ["unbind", "{}"], ["run", "--device", "{}", "--driver", "edu"],
       ["supervise", "--device", "{}", "--driver", "edu"], ["autobind", "--foreground", "{}"],
       ["install", "--device", "{}"]]


def _verdict(f: Callable[[str], object], bdf: str) -> str | None:
    """The canonical address `f` used (when it shows it), "" if it took the address
    without showing it, None if it refused it as malformed."""
    try:
        out = f(bdf)
    except (DeviceError, BridgeError):
        return None
    return str(out) if isinstance(out, str) else ""


@pytest.mark.parametrize("bdf", SPELLINGS)
def test_library_entry_points_agree(machine: Path, bdf: str) -> None:
    try:
        want: str | None = normalise_bdf(bdf)
    except DeviceError:
        want = None
    assert _verdict(runtime_normalise_bdf, bdf) == want
    assert _verdict(lambda b: _devstate.status_path(b).stem, bdf) == want
    assert _verdict(lambda b: _devstate.claim_path(b).stem, bdf) == want
    assert _verdict(lambda b: unit_name(b)[len("udriver@"):-len(".service")], bdf) == want
    assert _verdict(lambda b: log_path(b).stem, bdf) == want
    assert (_verdict(interface_name, bdf) is None) == (want is None)
    assert (_verdict(lambda b: persist_bind(b, "vfio-pci"), bdf) is None) == (want is None)
    if want is not None:  # a record written under any spelling is found under the canonical
        _devstate.record_status(bdf, state="running")
        assert list(_devstate.read_status()) == [want]
        assert _devstate.read_record(want)["bdf"] == want
        _devstate.clear_status(want)


@pytest.mark.parametrize("argv", CLI, ids=[a[0] for a in CLI])
def test_cli_entry_points_agree(machine: Path, capsys: pytest.CaptureFixture[str],
                                caplog: pytest.LogCaptureFixture, argv: list[str]) -> None:
    for bdf in [s for s in SPELLINGS if s]:  # an empty `--device` reads as none given
        try:
            normalise_bdf(bdf)
            valid = True
        except DeviceError:
            valid = False
        caplog.clear()
        code = main([a.format(bdf) for a in argv])
        out, err = capsys.readouterr()
        said = out + err + caplog.text
        assert code != 0, (argv, bdf, said)  # nothing is there: every command fails...
        # ...but only a malformed address is called one, by every command alike.
        assert ("Invalid PCI address" in said) == (not valid), (argv, bdf, said)


def test_status_lists_only_records_named_by_an_address(machine: Path) -> None:
    _devstate.record_status("0000:00:04.0", state="running")
    d = _devstate.status_dir()
    (d / "0000:00:20.0.json").write_text('{"state": "running"}')  # device 20: not a device
    (d / "00:04.0.json").write_text('{"state": "running"}')  # not the canonical name
    assert list(_devstate.read_status()) == ["0000:00:04.0"]
