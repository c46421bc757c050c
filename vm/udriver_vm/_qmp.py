"""A small synchronous QMP client (QEMU Machine Protocol, ``docs/interop/qmp-spec.rst``).

Protocol steps: connect to the unix socket; read the greeting (``{"QMP": ...}``); send
``qmp_capabilities`` to leave capabilities negotiation mode; then each ``{"execute": ...}``
gets exactly one ``{"return": ...}`` or ``{"error": ...}``, in order. Asynchronous events
(``{"event": ...}``, e.g. ``DEVICE_DELETED`` once the guest released an unplugged device) may
arrive at any time; they are queued and never taken for a reply. Every read has a timeout.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import GuestDied, GuestError, GuestTimeout

__all__ = ["Qmp"]


class Qmp:
    """One QMP connection; thread-safe (one command at a time)."""

    def __init__(self, path: Path, on_closed: Callable[[], str] = lambda: "") -> None:
        """Remember the socket path; ``on_closed()`` adds context (console tail) to errors."""
        self.path = path
        self._on_closed = on_closed
        self._sock: socket.socket | None = None
        self._buf = b""
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def connect(self, timeout: float = 30) -> None:
        """Connect, read the greeting and negotiate capabilities.

        Raises:
            GuestError: no socket within ``timeout`` s, or QEMU answered unexpectedly.
            GuestTimeout: the greeting or negotiation reply did not come in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
                break
            except OSError as e:
                s.close()
                if time.monotonic() > deadline:
                    raise GuestError(f"cannot connect to QMP at {self.path}: {e}") from e
                time.sleep(0.05)
        self._sock = s
        with self._lock:
            greeting = self._read(timeout)
            if "QMP" not in greeting:
                raise GuestError(f"unexpected QMP greeting: {greeting}")
            s.sendall(b'{"execute": "qmp_capabilities"}\n')
            reply = self._reply(timeout)
            if "return" not in reply:
                raise GuestError(f"qmp_capabilities refused: {reply}")

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def execute(self, command: str, timeout: float, arguments: dict[str, Any]) -> dict[str, Any]:
        """Send one command and return its reply dict.

        Raises:
            GuestTimeout: no reply within ``timeout`` s.
            GuestDied: the connection is closed.
        """
        with self._lock:
            msg: dict[str, Any] = {"execute": command}
            if arguments:
                msg["arguments"] = arguments
            self._require().sendall(json.dumps(msg).encode() + b"\n")
            return self._reply(timeout)

    def events(self) -> list[dict[str, Any]]:
        """Return (and forget) the events received so far, reading pending ones first.

        Raises:
            GuestDied: the connection is closed.
        """
        with self._lock:
            self._drain()
            ev, self._events = self._events, []
            return ev

    def wait_event(self, name: str, timeout: float, data: dict[str, Any]) -> dict[str, Any]:
        """Wait for event ``name`` whose ``data`` includes ``data``; consume and return it.

        Raises:
            GuestTimeout: no such event within ``timeout`` s.
            GuestDied: the connection is closed.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._drain()
                for i, ev in enumerate(self._events):
                    evd = ev.get("data", {})
                    if ev.get("event") == name and all(evd.get(k) == v for k, v in data.items()):
                        return self._events.pop(i)
            if time.monotonic() > deadline:
                raise GuestTimeout(f"no QMP event {name} {data} within {timeout} s")
            time.sleep(0.1)

    # --- internals (caller holds the lock) ----------------------------------------------

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise GuestDied(f"no QMP connection at {self.path}")
        return self._sock

    def _drain(self) -> None:
        """Queue every complete message already received; between commands all are events."""
        sock = self._require()
        sock.setblocking(False)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise GuestDied(f"QMP connection closed{self._on_closed()}")
                self._buf += chunk
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            sock.setblocking(True)
        while b"\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\n")
            self._events.append(json.loads(line))

    def _read(self, timeout: float) -> dict[str, Any]:
        sock = self._require()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestTimeout(f"no QMP message within {timeout} s")
            sock.settimeout(min(left, 1.0))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise GuestDied(f"QMP connection closed{self._on_closed()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        obj: dict[str, Any] = json.loads(line)
        return obj

    def _reply(self, timeout: float) -> dict[str, Any]:
        while True:
            obj = self._read(timeout)
            if "event" in obj:
                self._events.append(obj)
                continue
            return obj
