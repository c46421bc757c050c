"""`record`: the dataclasses the `udriver` commands load at start-up, without `dataclasses`.

`udriver devices`, `status` and `search` are run next to `lspci` (issue 13, acceptance
6). The dataclasses module costs them twice: importing it loads `inspect` (and with it
`ast`, `dis`, `tokenize`), and every class it decorates compiles its generated
`__init__`, `__repr__`, `__eq__`, `__hash__` and `__setattr__` from source with `exec`
on every start, some fifteen classes on those commands' path: together a sixth of
`udriver devices`' run. `record` builds the same methods from shared, precompiled
functions instead.

What it keeps of `dataclasses.dataclass` (the part these classes use): fields from the
class's annotations (ClassVar excluded) with defaults, `field(default=...,
default_factory=..., compare=..., hash=..., repr=...)`; `__init__` taking the fields
positionally or by name, `__post_init__`; `__repr__`, `__eq__` over the compared fields
(same class only), `__match_args__`; `frozen=True` (assignment raises
`FrozenInstanceError`, an `AttributeError`; hashable over the hashed fields), `eq=True`
without `frozen` (unhashable); `slots=True` (a new class with `__slots__`, picklable and
copyable). Methods the class defines itself are kept, as dataclass keeps them.

For mypy the decorator IS `dataclasses.dataclass` (under `TYPE_CHECKING`), so every
construction is type-checked as before. At run time `dataclasses.fields`, `replace`,
`asdict` and `is_dataclass` accept a record too: its `__dataclass_fields__` is made on
first use, by `dataclasses` itself (`make_dataclass` over the same fields), only by
callers that import `dataclasses` anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FrozenInstanceError", "field", "record", "replace"]

if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, field, replace
    from dataclasses import dataclass as record
else:
    class FrozenInstanceError(AttributeError):
        """Assignment to a field of a frozen record (as dataclasses' own)."""

    _MISSING: Any = type("_MISSING", (), {"__repr__": lambda self: "MISSING"})()

    class _Field:
        __slots__ = ("compare", "default", "default_factory", "hash", "name", "repr", "type")

        def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                     compare: bool = True, hash: bool | None = None, repr: bool = True
                     ) -> None:
            self.default, self.default_factory = default, default_factory
            self.compare, self.hash, self.repr = compare, hash, repr
            self.name, self.type = "", ""

    def field(*, default: Any = _MISSING, default_factory: Any = _MISSING,
              compare: bool = True, hash: bool | None = None, repr: bool = True) -> Any:
        """As `dataclasses.field`, for the options listed in the module docstring."""
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        return _Field(default, default_factory, compare, hash, repr)

    def _init(self: Any, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields = cls.__record_fields__
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}.__init__() takes {len(fields) + 1} positional "
                            f"arguments but {len(args) + 1} were given")
        for i, f in enumerate(fields):
            if i < len(args):
                if f.name in kwargs:
                    raise TypeError(f"{cls.__name__}.__init__() got multiple values for "
                                    f"argument {f.name!r}")
                value = args[i]
            elif f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default is not _MISSING:
                value = f.default
            elif f.default_factory is not _MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{cls.__name__}.__init__() missing required argument: "
                                f"{f.name!r}")
            object.__setattr__(self, f.name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument "
                            f"{next(iter(kwargs))!r}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def _repr(self: Any) -> str:
        cls = type(self)
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in cls.__record_fields__ if f.repr)
        return f"{cls.__qualname__}({inner})"

    def _compared(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in type(self).__record_fields__ if f.compare)

    def _eq(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    def _hash(self: Any) -> int:
        return hash(tuple(getattr(self, f.name) for f in type(self).__record_fields__
                          if (f.compare if f.hash is None else f.hash)))

    def _frozen_setattr(self: Any, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def _frozen_delattr(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _getstate(self: Any) -> list[Any]:
        return [getattr(self, f.name) for f in type(self).__record_fields__]

    def _setstate(self: Any, state: list[Any]) -> None:
        for f, value in zip(type(self).__record_fields__, state):
            object.__setattr__(self, f.name, value)

    class _DataclassFields:
        """`__dataclass_fields__`, made by `dataclasses` on first use (module docstring)."""

        def __get__(self, obj: Any, owner: type) -> dict[str, Any]:
            import dataclasses
            specs = []
            for f in owner.__record_fields__:
                kw: dict[str, Any] = {"compare": f.compare, "hash": f.hash, "repr": f.repr}
                if f.default is not _MISSING:
                    kw["default"] = f.default
                if f.default_factory is not _MISSING:
                    kw["default_factory"] = f.default_factory
                specs.append((f.name, f.type, dataclasses.field(**kw)))
            twin = dataclasses.make_dataclass(owner.__name__, specs)
            made: dict[str, Any] = twin.__dataclass_fields__
            type.__setattr__(owner, "__dataclass_fields__", made)
            return made

    def _fields_of(cls: type) -> tuple[_Field, ...]:
        inherited: dict[str, _Field] = {}
        for base in reversed(cls.__mro__[1:]):
            for f in base.__dict__.get("__record_fields__", ()):
                inherited[f.name] = f
        # Not inspect.get_annotations: importing inspect is what this module avoids.
        for name, ann in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if "ClassVar" in str(ann):
                continue
            value = cls.__dict__.get(name, _MISSING)
            f = value if isinstance(value, _Field) else _Field(default=value)
            f.name, f.type = name, ann
            inherited[name] = f
        fields = tuple(inherited.values())
        seen_default = False
        for f in fields:
            if f.default is not _MISSING or f.default_factory is not _MISSING:
                seen_default = True
            elif seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        return fields

    def _process(cls: type, frozen: bool, slots: bool, eq: bool) -> type:
        fields = _fields_of(cls)
        own = dict(cls.__dict__)
        add: dict[str, Any] = {"__init__": _init, "__repr__": _repr}
        if eq:
            add["__eq__"] = _eq
            add["__hash__"] = _hash if frozen else None
        if frozen:
            add["__setattr__"] = _frozen_setattr
            add["__delattr__"] = _frozen_delattr
        add = {k: v for k, v in add.items() if k not in own}
        add["__record_fields__"] = fields
        add.setdefault("__match_args__", tuple(f.name for f in fields))
        add["__dataclass_fields__"] = _DataclassFields()
        # A class attribute holds a plain default (as dataclass leaves it); not a field().
        drop = [f.name for f in fields if isinstance(own.get(f.name), _Field)
                or (slots and f.name in own)]
        if not slots:
            for name in drop:
                type.__delattr__(cls, name)
            for name, value in add.items():
                type.__setattr__(cls, name, value)
            return cls
        ns = {k: v for k, v in own.items()
              if k not in ("__dict__", "__weakref__") and k not in drop}
        ns.update(add)
        ns["__slots__"] = tuple(f.name for f in fields
                                if not any(f.name in getattr(b, "__slots__", ())
                                           for b in cls.__mro__[1:]))
        ns.setdefault("__getstate__", _getstate)
        ns.setdefault("__setstate__", _setstate)
        new = type(cls)(cls.__name__, cls.__bases__, ns)
        new.__qualname__ = cls.__qualname__
        return new

    def replace(obj: Any, /, **changes: Any) -> Any:
        """As `dataclasses.replace`: a copy of record `obj` with `changes`."""
        for f in type(obj).__record_fields__:
            if f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return type(obj)(**changes)

    def record(cls: type | None = None, /, *, frozen: bool = False, slots: bool = False,
               eq: bool = True) -> Any:
        """As `dataclasses.dataclass` (module docstring: what it keeps)."""
        def wrap(c: type) -> type:
            return _process(c, frozen, slots, eq)
        return wrap if cls is None else wrap(cls)
