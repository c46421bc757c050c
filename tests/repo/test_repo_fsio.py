"""Crash-safe writes and the publisher lock (`udriver_repo._fsio`)."""

from __future__ import annotations

import os
import threading
import time

from udriver_repo._fsio import RepoLock, set_step_hook, write_atomic, write_new


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "d" / "f.json"
    write_atomic(p, b"one")
    write_atomic(p, b"two")
    assert p.read_bytes() == b"two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.json"]


def test_write_new_skips_identical_and_replaces_torn(tmp_path):
    p = tmp_path / "abc.whl"
    assert write_new(p, b"content") is True
    assert write_new(p, b"content") is False
    p.write_bytes(b"cont")  # torn by a crash
    assert write_new(p, b"content") is True and p.read_bytes() == b"content"


def test_steps_are_reported_to_the_hook(tmp_path):
    steps: list[tuple[int, str]] = []
    set_step_hook(lambda n, what: steps.append((n, what)))
    try:
        write_atomic(tmp_path / "x", b"1")
    finally:
        set_step_hook(None)
    assert steps == [(1, "write x"), (2, "rename x")]
    write_atomic(tmp_path / "y", b"2")
    assert len(steps) == 2


def test_lock_excludes_a_second_holder_until_released(tmp_path):
    order: list[str] = []
    held = threading.Event()

    def second() -> None:
        held.wait()
        with RepoLock(tmp_path):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    with RepoLock(tmp_path):
        held.set()
        time.sleep(0.3)
        order.append("first")
    t.join(10)
    assert order == ["first", "second"]
    assert oct(os.stat(tmp_path / "lock").st_mode & 0o777) == "0o600"
