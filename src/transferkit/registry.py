"""A small name -> factory registry, used for backbones and strategies."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferkit.errors import ConfigError

T = TypeVar("T")


def closest_match_hint(name: str, choices: list[str]) -> str:
    """Return ' Did you mean "x"?' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


class Registry(Generic[T]):
    """Maps names to factories. Duplicate names raise; unknown names list the valid ones."""

    def __init__(self, kind: str, error: type[Exception] = ConfigError) -> None:
        self.kind = kind
        self._error = error
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        def decorator(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            self._descriptions[name] = description or (getattr(factory, "__doc__", "") or "").split("\n")[0]
            return factory

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise self._error(
                f"Unknown {self.kind} {name!r}.{closest_match_hint(name, self.names())} "
                f"Available: {', '.join(self.names())}."
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        return self._descriptions.get(name, "")
