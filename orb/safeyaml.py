"""Bounded YAML reading for config and sweep files and `--set` values.

A hostile file must not exhaust memory or the stack before pydantic sees it: files above MAX_BYTES,
more than MAX_ALIASES alias uses, an expansion above MAX_NODES nodes (aliases counted at every use),
nesting deeper than MAX_DEPTH, a key given twice in one mapping, binary data and non-finite numbers
are each one ConfigError line naming the file (or the override) and, where there is one, the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orb.errors import SHORT, ConfigError, cut, short

__all__ = ["SHORT", "cut", "parse_yaml", "read_yaml_file", "short"]

MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_DEPTH = 32


class _Refused(Exception):
    """Raised inside the loader; turned into a ConfigError with the file name by the caller."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and nesting while composing and checks the composed tree
    (expanded size, duplicate keys, finite numbers) before any Python object is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"uses more than {MAX_ALIASES} aliases (*name); write the values out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node:
        node = super().compose_document()
        _check_size(node)
        _check_tree(self, node, ())
        return node


def _check_size(root: Node) -> None:
    """Reject a tree whose alias-expanded node count exceeds MAX_NODES (memoised, linear in the file)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        kids = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(k), 0) for k in kids)
        if sizes[id(node)] > MAX_NODES:
            raise _Refused(f"expands to more than {MAX_NODES:,} values (nested aliases); write it out")


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_tree(loader: yaml.SafeLoader, node: Node, path: tuple[str, ...]) -> None:
    """Duplicate keys and non-finite floats, named by their key path (bounded by _check_size)."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is not None and key != "<<":
                where = ".".join((*path, key))
                if key in seen:
                    raise _Refused(
                        f"key '{cut(where)}' is given twice (lines {seen[key]} and "
                        f"{key_node.start_mark.line + 1}); keep one"
                    )
                seen[key] = key_node.start_mark.line + 1
            _check_tree(loader, value_node, (*path, cut(str(key))) if key is not None else path)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _check_tree(loader, item, (*path, str(i)))
    elif node.tag == "tag:yaml.org,2002:float":
        number = loader.construct_yaml_float(node)
        if not math.isfinite(number):
            where = ".".join(path) or "(top level)"
            raise _Refused(f"key '{cut(where)}' = {short(node.value)} is not a finite number")


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document in `text`; ConfigError starting with `where` for any refused or invalid input."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{where} is {len(text):,} characters, more than {MAX_BYTES:,}; shorten it")
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where} is not valid YAML{line}; fix the syntax") from None
    except (RecursionError, OverflowError, ValueError) as exc:
        raise ConfigError(f"{where} cannot be read as YAML ({type(exc).__name__}); simplify it") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path, where: str, flag: str) -> Any:
    """The YAML document of file `path` (at most MAX_BYTES, UTF-8); ConfigError names `where` and
    says to pass an existing file to `flag` when it is missing."""
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{where} not found; pass an existing YAML file to {flag}") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a folder; pass a YAML file to {flag}") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read ({exc.strerror}); check its permissions") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{where} is larger than {MAX_BYTES:,} bytes; a config file is a few KB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where} is not UTF-8 text (byte {exc.start}); pass a YAML text file to {flag}"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{where} holds NUL bytes (a binary file?); pass a YAML text file to {flag}")
    return parse_yaml(text, where)
