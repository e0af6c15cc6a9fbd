"""A small decorator registry shared by datasets, models and methods (timm/torchvision style)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """An unknown registry name; the message suggests the close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class PluginError(ImportError):
    """A module named in DDCORE_PLUGINS could not be imported (the message names it and why). Defined here,
    not in ddcore.methods, so a caller can catch it without importing (and so loading) the plugins."""


@dataclass
class Entry(Generic[T]):
    name: str
    obj: T
    description: str = ""
    tags: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Names to objects. Duplicate names are refused; unknown names get close matches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "", **tags: Any) -> Callable[[T], T]:
        key = self._key(name)

        def decorator(obj: T) -> T:
            self.add(key, obj, description, **tags)
            return obj

        return decorator

    def add(self, name: str, obj: T, description: str = "", **tags: Any) -> None:
        key = self._key(name)
        if key in self._entries:
            raise ValueError(f"{self.kind} '{key}' is already registered")
        self._entries[key] = Entry(key, obj, description, dict(tags))

    def entry(self, name: str) -> Entry[T]:
        key = self._key(name)
        if key not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries[key]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(self._key(name), list(self._entries), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(sorted(self._entries))}."

    def remove(self, name: str) -> Entry[T]:
        """Unregister a name (tests that register a temporary entry clean up with this)."""
        key = self._key(name)
        if key not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries.pop(key)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def registered(self) -> list[str]:
        """Names in the order they were registered (stable when later entries are added)."""
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[k] for k in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower()


def drop_none(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop None values so UI defaults never override a model's or method's own defaults."""
    return {k: v for k, v in kwargs.items() if v is not None}
