"""The building blocks of the config sections of orb.config, without pydantic.

`Num`, `Before` and `After` are `Annotated` metadata holding a field's rules; `Section` is the base of the
frozen section dataclasses (settings, cross-field `_check`, `to_dict`/`from_dict`). orb.config_schema
turns them into pydantic-core schemas when a config is validated.
"""

import functools
from collections.abc import Callable
from dataclasses import fields
from enum import Enum
from typing import Any, ClassVar, Self


class Num:
    """Metadata of a number field: pydantic's bounds (gt, ge, le), and a bool is not a number (YAML
    `true` is not 1)."""

    __slots__ = ("bounds",)

    def __init__(self, **bounds: float) -> None:
        self.bounds = bounds

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from orb.config_schema import number_schema

        return number_schema(self.bounds, source, handler)


class Before:
    """Metadata of a field: `parse(raw value)` runs before the type's validation; ValueError is the
    field's message."""

    __slots__ = ("parse",)

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        self.parse = parse

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from orb.config_schema import before_schema

        return before_schema(self.parse, source, handler)


class After:
    """Metadata of a field: `check(value)` runs after the type's validation and returns the value kept;
    ValueError is the field's message."""

    __slots__ = ("check",)

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from orb.config_schema import after_schema

        return after_schema(self.check, source, handler)


class Section:
    """A config section (a frozen dataclass): pydantic validates it with `__pydantic_config__`, its
    fields' metadata, then `_check`. `to_dict` gives the file's key names; `from_dict` reads that back."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid", "allow_inf_nan": False}

    def _check(self) -> None:
        """Rules across fields of the section (raise ValueError); none unless a section overrides it."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from orb.config_schema import section_schema

        return section_schema(cls, source, handler)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with the file's key names (re-loadable as --config)."""
        out = {}
        for name, key, kind in _layout(type(self)):
            value = getattr(self, name)
            if kind is not None:
                value = value.to_dict() if issubclass(kind, Section) else value.value
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The section of a `to_dict()` mapping (every key present) as it is: for mappings validated
        before (orb.config_cache), not a validation."""
        layout = _layout(cls)
        if len(data) != len(layout):
            raise ValueError(f"{cls.__name__}: {len(data)} keys, expected {len(layout)}")
        values = {}
        for name, key, kind in layout:
            value = data[key]
            if kind is not None:
                value = kind.from_dict(value) if issubclass(kind, Section) else kind(value)
            values[name] = value
        return cls(**values)


@functools.cache
def _layout(section: type[Section]) -> tuple[tuple[str, str, type | None], ...]:
    """(attribute, file key, section or enum class of the value, else None) of each field, in order."""
    out = []
    for f in fields(section):  # type: ignore[arg-type]
        kind = f.type if isinstance(f.type, type) and issubclass(f.type, Section | Enum) else None
        out.append((f.name, f.metadata.get("alias", f.name), kind))
    return tuple(out)
