"""Frozen structs for the daemon's many small types (typed events, lifecycle events and effects).

To mypy a :class:`Struct` subclass is a frozen dataclass (PEP 681, ``dataclass_transform``):
checked constructors, no assignment.  At run time it is a plain class with one shared
``__init__``, ``__setattr__`` and ``__repr__``: ``@dataclass`` compiles an ``__init__``, a
``__setattr__`` and a ``__delattr__`` (and more with ``slots=True``) for every class, 9-24 KiB
each, ~0.5 MiB of the daemon's resident memory over its ~40 event and effect types.

Fields are the class's annotations (``ClassVar`` excluded), base classes first; a default is a
plain class attribute or ``dataclasses.field(default=..., default_factory=...)``.
:class:`KwStruct`: the same, every field keyword-only (typed events: ``Note(app=..., kind=...)``).
Structs compare by identity, as the dataclasses they replace did (``eq=False``).

Standard library only (the pure lifecycle imports it).
"""

from __future__ import annotations

from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import Any, ClassVar, dataclass_transform

_NO_DEFAULT: Any = object()


class _Base:
    __slots__ = ()
    __fields__: ClassVar[tuple[str, ...]] = ()
    __defaults__: ClassVar[dict[str, Any]] = {}
    __factories__: ClassVar[dict[str, Any]] = {}
    __kw_only__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = list(cls.__fields__)
        defaults, factories = dict(cls.__defaults__), dict(cls.__factories__)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if "ClassVar" in str(annotation):
                continue
            value = cls.__dict__.get(name, _NO_DEFAULT)
            if isinstance(value, Field):
                if value.default_factory is not MISSING:
                    factories[name] = value.default_factory
                elif value.default is not MISSING:
                    defaults[name] = value.default
            elif value is not _NO_DEFAULT:
                defaults[name] = value
            else:
                defaults.pop(name, None), factories.pop(name, None)
            # a plain class attribute, so the instance's own value is found even where a base
            # class has a property of that name (``Event.kind`` and the field ``Note.kind``)
            type.__setattr__(cls, name, None)
            if name not in names:
                names.append(name)
        cls.__fields__ = tuple(names)
        cls.__defaults__, cls.__factories__ = defaults, factories
        type.__setattr__(cls, "__match_args__", () if cls.__kw_only__ else cls.__fields__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__fields__
        if args and (self.__kw_only__ or len(args) > len(names)):
            raise TypeError(f"{type(self).__name__}() takes {0 if self.__kw_only__ else len(names)} "
                            f"positional arguments but {len(args)} were given")
        put = object.__setattr__
        for name, value in zip(names, args):
            put(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                put(self, name, kwargs.pop(name))
            elif name in self.__defaults__:
                put(self, name, self.__defaults__[name])
            elif name in self.__factories__:
                put(self, name, self.__factories__[name]())
            else:
                raise TypeError(f"{type(self).__name__}() missing the argument {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got an unexpected argument {next(iter(kwargs))!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__fields__)
        return f"{type(self).__name__}({shown})"


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field,))
class Struct(_Base):
    __slots__ = ()


@dataclass_transform(frozen_default=True, eq_default=False, kw_only_default=True, field_specifiers=(field,))
class KwStruct(_Base):
    __slots__ = ()
    __kw_only__ = True


def replace(record: Any, **changes: Any) -> Any:
    """A copy of ``record`` with ``changes`` (``dataclasses.replace`` for structs)."""
    values = {name: getattr(record, name) for name in record.__fields__}
    values.update(changes)
    return type(record)(**values)
