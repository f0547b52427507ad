"""Pydantic validation of the config dataclasses of orb.config (imported only when a config is validated).

The rules live in orb.config: a section's `__pydantic_config__` (unknown keys forbidden, finite floats
only), its fields' metadata (`Num`, `Before`, `After`, the `validate` alias) and its `_check`. This module
turns them into pydantic-core schemas and reports the first problem with the names and messages pydantic
gives a `BaseModel` (`extra_forbidden`, "Input should be a valid dictionary or instance of ...").
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import annotated_types
from pydantic import GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, core_schema

from orb.config import Config
from orb.config_base import Section


@dataclass(frozen=True)
class Problem:
    """The first error of a validation: key path, pydantic error type, message and the value given."""

    loc: tuple[str | int, ...]
    type: str
    msg: str
    input: Any


def number_schema(bounds: dict[str, float], source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """`source` (int or float) within `bounds`; true/false refused before pydantic would read it as 1/0."""
    inner = handler(Annotated[source, annotated_types.Interval(**bounds)]) if bounds else handler(source)
    return core_schema.no_info_before_validator_function(_not_bool, inner)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def before_schema(parse: Callable[[Any], Any], source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    return core_schema.no_info_before_validator_function(parse, handler(source))


def after_schema(check: Callable[[Any], Any], source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    return core_schema.no_info_after_validator_function(check, handler(source))


def section_schema(section: type, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """The dataclass schema of `section`, then its `_check` on the validated section."""
    schema = handler(source)
    if section._check is Section._check:
        return schema

    def checked(value: Any) -> Any:
        value._check()
        return value

    return core_schema.no_info_after_validator_function(checked, schema)


@functools.cache
def _adapter() -> TypeAdapter[Config]:
    return TypeAdapter(Config)


def validate(data: Any) -> Config | Problem:
    """`data` (a merged mapping) as a Config, or the first problem pydantic found in it."""
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        return _as_model_error(exc.errors()[0])


def _as_model_error(error: Any) -> Problem:
    """A dataclass error under the type and message pydantic gives the same error of a BaseModel."""
    kind, message = error["type"], error["msg"]
    if kind == "unexpected_keyword_argument":
        kind, message = "extra_forbidden", "Extra inputs are not permitted"
    elif kind == "dataclass_type":
        kind = "model_type"
        message = f"Input should be a valid dictionary or instance of {error['ctx']['class_name']}"
    return Problem(tuple(error["loc"]), kind, message, error.get("input"))
