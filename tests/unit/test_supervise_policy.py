"""The pure restart/give-up rule, driven by a fake clock."""

from __future__ import annotations

import itertools
import signal

import pytest

from udriver.supervise import CrashTracker, RestartPolicy, describe_exit


def crash_at(t: CrashTracker, times: list[float], rc: int = 1, run: float = 0.0) -> list:
    return [t.on_exit(rc, now - run, now) for now in times]


def test_clean_exit_is_not_restarted_and_not_a_crash() -> None:
    t = CrashTracker()
    d = t.on_exit(0, 0.0, 1.0)
    assert (d.restart, d.give_up, d.crashes, d.delay) == (False, False, 0, 0.0)
    assert d.reason == "driver exited cleanly (exit status 0)"
    assert len(t.crashes) == 0


def test_backoff_doubles_from_initial_delay() -> None:
    t = CrashTracker(RestartPolicy(initial_delay=0.5, factor=2.0, max_delay=30.0))
    ds = crash_at(t, [1.0, 2.0, 3.0, 4.0])
    assert [d.delay for d in ds] == [0.5, 1.0, 2.0, 4.0]
    assert all(d.restart and not d.give_up for d in ds)
    assert [d.crashes for d in ds] == [1, 2, 3, 4]


def test_fifth_crash_within_60s_gives_up() -> None:
    t = CrashTracker()
    ds = crash_at(t, [0.0, 10.0, 20.0, 30.0, 59.9], rc=-signal.SIGSEGV)
    assert [d.give_up for d in ds] == [False] * 4 + [True]
    last = ds[-1]
    assert not last.restart and last.delay == 0.0 and last.crashes == 5
    assert last.reason == "gave up after 5 crashes in 60 s (last: killed by SIGSEGV)"


def test_crashes_older_than_window_are_forgotten() -> None:
    t = CrashTracker()
    ds = crash_at(t, [0.0, 10.0, 20.0, 30.0, 60.0])  # the first has left the window
    assert not ds[-1].give_up and ds[-1].crashes == 4
    d = t.on_exit(1, 61.0, 69.9)
    assert d.give_up and d.crashes == 5


def test_crash_exactly_window_seconds_later_does_not_count() -> None:
    t = CrashTracker(RestartPolicy(max_crashes=2, window=60.0))
    assert not t.on_exit(1, 0.0, 0.0).give_up
    assert not t.on_exit(1, 60.0, 60.0).give_up
    assert t.on_exit(1, 60.0, 119.0).give_up


def test_backoff_is_capped() -> None:
    t = CrashTracker(RestartPolicy(max_crashes=100, window=1000, initial_delay=1, factor=3,
                                   max_delay=10))
    ds = crash_at(t, [float(i) for i in range(6)])
    assert [d.delay for d in ds] == [1, 3, 9, 10, 10, 10]


def test_long_run_resets_backoff_but_not_crash_count() -> None:
    p = RestartPolicy(window=1000.0, reset_after=60.0, max_crashes=10)
    t = CrashTracker(p)
    assert [d.delay for d in crash_at(t, [1.0, 2.0, 3.0])] == [0.5, 1.0, 2.0]
    d = t.on_exit(1, 100.0, 200.0)  # ran 100 s
    assert d.delay == 0.5 and d.crashes == 4


def test_clean_exit_resets_backoff() -> None:
    t = CrashTracker(RestartPolicy(window=1000.0, max_crashes=10))
    crash_at(t, [1.0, 2.0, 3.0])
    t.on_exit(0, 3.0, 4.0)
    assert t.on_exit(1, 5.0, 6.0).delay == 0.5


def test_reset_forgets_everything() -> None:
    t = CrashTracker()
    crash_at(t, [1.0, 2.0, 3.0, 4.0])
    t.reset()
    d = t.on_exit(1, 5.0, 5.0)
    assert d.crashes == 1 and d.delay == 0.5 and not d.give_up


def test_clock_going_backwards_is_refused() -> None:
    t = CrashTracker()
    with pytest.raises(ValueError, match="clock went backwards"):
        t.on_exit(1, 10.0, 9.0)
    t.on_exit(1, 10.0, 10.0)
    with pytest.raises(ValueError, match="clock went backwards"):
        t.on_exit(1, 5.0, 5.0)


@pytest.mark.parametrize("kwargs, msg", [
    ({"max_crashes": 0}, "`max_crashes` must be >= 1"),
    ({"window": 0}, "`window` must be > 0"),
    ({"initial_delay": -1}, "`initial_delay`"),
    ({"initial_delay": 5, "max_delay": 1}, "`max_delay`"),
    ({"factor": 0.5}, "`factor` must be >= 1"),
])
def test_invalid_policy_rejected(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        RestartPolicy(**kwargs)


def test_describe_exit() -> None:
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"


def test_exhaustive_small_schedules_match_sliding_window_model() -> None:
    """Every crash schedule on a coarse grid agrees with a direct count of the window."""
    p = RestartPolicy(max_crashes=3, window=4.0, initial_delay=1, factor=2, max_delay=3,
                      reset_after=1000)
    grid = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0]
    for n in range(1, 6):
        for times in itertools.combinations_with_replacement(grid, n):
            t = CrashTracker(p)
            history: list[float] = []
            for i, now in enumerate(times):
                history.append(now)
                in_window = [x for x in history if now - x < p.window]
                d = t.on_exit(1, now, now)
                assert d.crashes == len(in_window), times
                assert d.give_up == (len(in_window) >= 3), times
                if d.give_up:
                    break
                assert d.delay == min(3, 2 ** i), times
