"""oomd.typeshim's run-time stand-ins behave as typing's do where the daemon relies on it."""

from __future__ import annotations

import pickle

import pytest

from oomd.typeshim import Generic, NamedTuple, Protocol, TypeVar, cast

T = TypeVar("T")


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


class Box(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Sized(Protocol):
    size: int


def test_a_namedtuple_has_its_fields_defaults_and_methods() -> None:
    p = Point(3, -4)
    assert p == (3, -4, "") and p == Point(x=3, y=-4)
    assert hash(p) == hash((3, -4, ""))
    assert p.norm1() == 7
    assert p._replace(label="a") == Point(3, -4, "a")
    assert Point._fields == ("x", "y", "label")
    assert Point._field_defaults == {"y": 0, "label": ""}
    assert Point.__doc__ == "A point."
    assert Point.__module__ == __name__
    assert pickle.loads(pickle.dumps(p)) == p
    x, y, label = p
    assert (x, y, label) == (3, -4, "")
    with pytest.raises(AttributeError):
        p.x = 1  # type: ignore[misc]


def test_a_namedtuple_refuses_what_typing_refuses() -> None:
    with pytest.raises(TypeError, match="without a default"):

        class Bad(NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(AttributeError, match="_replace"):

        class Clash(NamedTuple):
            a: int

            def _replace(self) -> None:  # type: ignore[misc]
                pass


def test_generic_and_protocol_subscripts_are_the_class_and_add_no_dict() -> None:
    assert Box[int] is Box
    assert Box(5).value == 5
    assert not hasattr(Box(5), "__dict__")

    class Thing(Sized):
        def __init__(self) -> None:
            self.size = 2

    assert Thing().size == 2


def test_cast_returns_the_value() -> None:
    value: object = [1]
    assert cast("list[int]", value) is value
