"""`udriver._record.record` behaves as `dataclasses.dataclass` for what udriver uses.

Each behaviour is checked against a real dataclass declared the same way, so a
difference fails here rather than in a caller.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from udriver._record import FrozenInstanceError, field, record, replace


@record(frozen=True, slots=True)
class Slotted:
    a: int
    b: str | None = None


@record(frozen=True)
class Entry:
    name: str
    files: dict[str, str] = field(hash=False, compare=False)
    repo: str = ""
    vendor: str = field(default="", compare=False)
    tags: tuple[str, ...] = ()


@record
class Mutable:
    items: list[int] = field(default_factory=list)
    count: int = 0


@dataclasses.dataclass(frozen=True)
class RealEntry:
    name: str
    files: dict[str, str] = dataclasses.field(hash=False, compare=False)
    repo: str = ""
    vendor: str = dataclasses.field(default="", compare=False)
    tags: tuple[str, ...] = ()


def _as_real(e: Entry) -> RealEntry:
    return RealEntry(e.name, e.files, e.repo, e.vendor, e.tags)


def test_init_repr_eq_hash_as_dataclass() -> None:
    e = Entry("acme", {"wheel": "w"}, vendor="v1")
    r = _as_real(e)
    assert repr(e) == repr(r).replace("RealEntry", "Entry")
    assert e == Entry("acme", {}, vendor="v2")  # files and vendor are not compared
    assert (e == Entry("acme", {}, repo="x")) == (r == RealEntry("acme", {}, repo="x"))
    assert hash(e) == hash(Entry("acme", {"other": "x"}))
    assert e != ("acme",) and (e == 1) is False
    assert Slotted(1) == Slotted(a=1) and Slotted(1) != Slotted(1, "b")
    assert Entry.__match_args__ == RealEntry.__match_args__


def test_frozen_and_slots() -> None:
    s = Slotted(1)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
        s.a = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del s.b  # type: ignore[misc]
    assert not hasattr(s, "__dict__") and Slotted.__slots__ == ("a", "b")
    e = Entry("acme", {})
    with pytest.raises(FrozenInstanceError):
        e.repo = "x"  # type: ignore[misc]
    assert issubclass(FrozenInstanceError, AttributeError)


def test_mutable_is_unhashable_and_factories_are_fresh() -> None:
    m = Mutable()
    m.count = 3
    assert m == Mutable([], 3) and Mutable().items is not Mutable().items
    with pytest.raises(TypeError):
        hash(m)


@pytest.mark.parametrize("args,kwargs,message", [
    ((), {}, "missing required argument: 'name'"),
    (("a", {}, "r", "v", (), "extra"), {}, "takes 6 positional arguments but 7 were given"),
    (("a",), {"name": "b", "files": {}}, "multiple values for argument 'name'"),
    (("a", {}), {"nope": 1}, "unexpected keyword argument 'nope'"),
])
def test_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Entry(*args, **kwargs)


def test_non_default_after_default_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_copy_and_pickle() -> None:
    for obj in (Slotted(1, "x"), Entry("acme", {"w": "1"}, "r")):
        assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
        assert pickle.loads(pickle.dumps(obj)) == obj


def test_dataclasses_functions_accept_records() -> None:
    e = Entry("acme", {"w": "1"}, "r", "v")
    assert dataclasses.is_dataclass(e)
    assert [f.name for f in dataclasses.fields(e)] == [f.name for f in dataclasses.fields(
        RealEntry)]
    assert [f.compare for f in dataclasses.fields(Entry)] == [True, False, True, False, True]
    assert dataclasses.asdict(e) == dataclasses.asdict(_as_real(e))
    assert dataclasses.replace(e, repo="s") == replace(e, repo="s") == Entry("acme", {}, "s")
    assert replace(Slotted(1), b="y") == Slotted(1, "y")
