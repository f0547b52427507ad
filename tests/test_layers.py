"""The import layers of docs/architecture.md, read from the source with ast (nothing is imported).

core (config, engine, indicators, sessions, metrics, schema, errors, data) <- runs (layout, write; the
read side: read, store, research readers) <- pipeline, research <- CLI <- jobs; views (API, charts, report,
dashboard) read run folders through orb.runs.read only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = (
    "orb.config",
    "orb.engine",
    "orb.loop",
    "orb.loop_rows",
    "orb.indicators",
    "orb.sessions",
    "orb.metrics",
    "orb.schema",
    "orb.errors",
    "orb.validation",
    "orb.prepare",
    "orb.data",
)
UPPER = ("orb.runs", "orb.research", "orb.pipeline", "orb.console", "orb.api", "orb.views")
VIEWS = (
    "orb.api",
    "orb.views",
    "orb.charts",
    "orb.report",
    "orb.report_portfolio",
    "orb.dashboard",
    "streamlit_app",
    "api_server",
)
READ_SIDE = (
    "orb.runs.read",
    "orb.runs.store",
    "orb.runs.columns",
    "orb.runs.research",
    "orb.runs.portfolio_read",
    "orb.runs.layout",
)
CLI = ("run_backtest",)
JOBS = ("orb.jobs", "orb.worker")  # jobs build and check CLI command lines (a sweep file included)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    files = [*ROOT.joinpath("orb").rglob("*.py"), *ROOT.glob("*.py")]
    return {module_name(p): p for p in sorted(files)}


MODULES = sources()


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports (`from a import b` yields a and a.b); with `top_level_only` only the
    imports run when the module loads (not inside functions or `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _top_level(tree.body) if top_level_only else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _top_level(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body + node.orelse + node.finalbody)


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def offending(sources_of: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for name, path in MODULES.items():
        if within(name, sources_of):
            hits = sorted(i for i in imports(path) if within(i, forbidden))
            if hits:
                bad[name] = hits
    return bad


def test_the_source_tree_is_found():
    assert {"orb.engine", "orb.runs.read", "orb.runs.write", "orb.pipeline", "run_backtest"} <= set(MODULES)
    assert "orb.runs.write" in imports(MODULES["orb.pipeline"])


def test_core_never_imports_runs_views_or_research():
    assert offending(CORE, UPPER + VIEWS) == {}


def test_read_side_never_imports_the_writer():
    assert offending(READ_SIDE, ("orb.runs.write", "orb.pipeline", "orb.research")) == {}


@pytest.mark.parametrize(
    "forbidden", ["orb.engine", "orb.data", "orb.pipeline", "orb.runs.write", "orb.research"]
)
def test_views_never_import_compute_or_the_writer(forbidden):
    assert offending(VIEWS, (forbidden,)) == {}


def test_nothing_below_the_cli_imports_research():
    bad = {
        name: sorted(i for i in imports(path) if within(i, ("orb.research",)))
        for name, path in MODULES.items()
        if not within(name, ("orb.research", *CLI, *JOBS))
    }
    assert {name: hits for name, hits in bad.items() if hits} == {}


def test_no_import_cycle_when_modules_load():
    graph = {
        name: {i for i in imports(path, top_level_only=True) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise AssertionError(" -> ".join([*stack[stack.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*stack, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_the_rules_catch_a_violation(tmp_path):
    """The checker sees a forbidden import in a function body and under TYPE_CHECKING."""
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orb.runs import write\n"
        "def f():\n    import orb.research.sweep\n"
    )
    assert {"orb.runs", "orb.runs.write", "orb.research.sweep"} <= imports(src)
    assert imports(src, top_level_only=True) == {"typing", "typing.TYPE_CHECKING"}
