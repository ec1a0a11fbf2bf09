"""The few :mod:`typing` names that the daemon evaluates at run time, without ``typing``.

``import typing`` costs ~1.9 MiB of RSS under Debian's Python 3.11, an eighth of a
1,000-cgroup daemon (bench/README.md, "Memory"), and only our own modules import it on
the daemon's path. So they take names used only in annotations from ``typing`` under
``if TYPE_CHECKING:``, and the ones a class statement or a module body evaluates (a
``NamedTuple``, ``Generic`` or ``Protocol`` base, a ``TypeVar`` such a base names, a
``cast``) from here. To mypy these are ``typing``'s own (the ``TYPE_CHECKING`` branch);
at run time they are small stand-ins that do what the daemon needs of them:

* ``NamedTuple``: the class statement makes a :func:`collections.namedtuple`, with the
  annotated fields, their defaults and the body's methods, as ``typing`` does;
* ``Generic`` and ``Protocol``: empty bases whose subscript (``Arg[int]``) is the class
  itself; no run-time protocol checks (none is ``runtime_checkable``);
* ``TypeVar``: the name; ``cast``: the value, as ``typing.cast``.

``tests/test_import_footprint.py`` checks that the daemon's path never imports
``typing``.
"""

from __future__ import annotations

#: mypy takes any name ``TYPE_CHECKING`` as true; at run time it is this constant.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Generic as Generic
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
    from typing import TypeVar as TypeVar
    from typing import cast as cast
else:
    from collections import namedtuple

    class Generic:
        __slots__ = ()

        def __class_getitem__(cls, _params):
            return cls

    class Protocol(Generic):
        __slots__ = ()

    def TypeVar(name, *_constraints, **_options):
        return name

    def cast(_type, value):
        return value

    # What typing.NamedTupleMeta refuses in a NamedTuple's body, and takes from it.
    _PROHIBITED = frozenset(
        {"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults"}
        | {"_make", "_replace", "_asdict", "_source"}
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcls, typename, bases, ns):
            fields = ns.get("__annotations__", {})
            defaults = [name for name in fields if name in ns]
            if defaults != list(fields)[len(fields) - len(defaults) :]:
                raise TypeError(f"{typename}: a field without a default follows one with one")
            cls = namedtuple(
                typename, fields, defaults=[ns[name] for name in defaults], module=ns["__module__"]
            )
            cls.__annotations__ = dict(fields)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in cls._fields:
                    setattr(cls, key, value)
            return cls

    NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {"__slots__": ()})

__all__ = ["TYPE_CHECKING", "Generic", "NamedTuple", "Protocol", "TypeVar", "cast"]
