"""Parameter sweeps: the sweep file, its combinations, their ranking and the results table.

A sweep file is YAML with dotted config keys (docs/research.md):

    grid:                                  # every combination of these lists (last key varies fastest)
      orb.base_minutes: [5, 15, 30]
      trade.stop_mode: [or_opposite, atr_capped]
    random:                                # optional
      samples: 20                          # without params: this many grid combinations, drawn with seed
      seed: 7
      params:                              # with params: `samples` draws, each crossed with every grid row
        costs.slippage_per_share: {min: 0.0, max: 0.05}
        orb.atr_period: {min: 5, max: 30, integer: true}
        entry.mode: [stop, close]

Combinations are validated against the base config one by one: an invalid one (ConfigError) is kept
with its error and skipped, the others run.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orb.config import Config, with_overrides
from orb.errors import ConfigError
from orb.metric_registry import METRICS, PORTFOLIO_METRIC_KEYS, SCALAR_RUN_METRIC_KEYS, Better
from orb.runs.layout import AGGREGATE  # the symbol column of a combination's aggregate row
from orb.safeyaml import read_yaml_file
from orb.schema import METRIC_KEYS

MAX_COMBINATIONS = 10_000
FLOAT_DECIMALS = 6  # random floats are rounded to this many decimals
# sections that shape the loaded data: a sweep loads bars once, so they cannot vary
FIXED_SECTIONS = ("session", "data")
# keys that decide the run's mode or which bars are loaded (the benchmark's)
FIXED_KEYS = ("portfolio.enabled", "portfolio.benchmark")
# a portfolio sweep's aggregate rows also carry the account's portfolio metrics (strategy.md 10.8)
PORTFOLIO_KEYS = PORTFOLIO_METRIC_KEYS
COUNT_KEYS = tuple(k for k in METRIC_KEYS if METRICS[k].integer)
RANK_KEYS = SCALAR_RUN_METRIC_KEYS
LOWER_IS_BETTER = frozenset(k for k in (*RANK_KEYS, *PORTFOLIO_KEYS) if METRICS[k].better is Better.LOWER)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """A uniform draw in [min, max]; integers when `integer`."""

    min: float
    max: float
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class RandomSpec(_Model):
    samples: int = Field(gt=0, le=MAX_COMBINATIONS)
    seed: int = 0
    params: dict[str, list[Any] | Range] = {}

    @field_validator("params", mode="before")
    @classmethod
    def _choices_or_range(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v  # pydantic names the type error
        out: dict[str, Any] = {}
        for key, how in v.items():
            if isinstance(how, list) and how:
                out[key] = how
            elif isinstance(how, dict):
                try:
                    out[key] = Range.model_validate(how)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise ValueError(
                        f"{key}{'.' + where if where else ''}: {first['msg'].removeprefix('Value error, ')}"
                    ) from None
            else:
                raise ValueError(f"{key}: expected a non-empty list of values or {{min: .., max: ..}}")
        return out


class SweepFile(_Model):
    grid: dict[str, list[Any]] = {}
    random: RandomSpec | None = None

    @field_validator("grid", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key, values in v.items():
                if not isinstance(values, list) or not values:
                    raise ValueError(f"{key}: expected a non-empty list of values, e.g. [5, 15, 30]")
        return v

    @model_validator(mode="after")
    def _something(self) -> SweepFile:
        if not self.grid and (self.random is None or not self.random.params):
            raise ValueError("give a 'grid' of dotted config keys (and/or 'random.params')")
        both = set(self.grid) & set(self.random.params if self.random else {})
        if both:
            raise ValueError(f"{sorted(both)[0]} is both in grid and random.params; keep it in one")
        return self


@dataclass(frozen=True)
class Combination:
    """One point of the sweep: its position, overrides and validated config (None when invalid)."""

    index: int
    params: dict[str, Any]
    config: Config | None
    error: str | None = None


@dataclass(frozen=True)
class Sweep:
    path: Path
    keys: tuple[str, ...]
    combinations: tuple[Combination, ...]
    spec: dict[str, Any]  # the parsed file, for sweep.json

    @property
    def valid(self) -> list[Combination]:
        return [c for c in self.combinations if c.config is not None]

    @property
    def invalid(self) -> list[Combination]:
        return [c for c in self.combinations if c.config is None]


def load_sweep(path: Path, base: Config) -> Sweep:
    """Read, check and expand a sweep file over `base`; ConfigError names the file and the problem."""
    where = f"sweep file {path}"
    raw = read_yaml_file(Path(path), where, "--sweep")  # bounded: size, aliases, depth, duplicate keys
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with 'grid' and/or 'random' (see docs/research.md)")
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown section; use 'grid' and 'random'"
        raise ConfigError(f"{where}: {loc + ': ' if loc else ''}{msg}") from None
    keys = (*spec.grid, *(spec.random.params if spec.random else {}))
    tree = base.to_dict()
    for key in keys:
        _check_key(key, tree, where)
    params = _expand(spec)
    if len(params) > MAX_COMBINATIONS:
        raise ConfigError(
            f"{where} expands to {len(params):,} combinations (more than {MAX_COMBINATIONS:,}); "
            f"shrink the grid or use random.samples"
        )
    return Sweep(
        Path(path),
        tuple(keys),
        tuple(_combination(i, p, base) for i, p in enumerate(params)),
        spec.model_dump(mode="json"),
    )


def _check_key(key: str, tree: dict[str, Any], where: str) -> None:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"{where}: unknown config key '{key}'; check the spelling against defaults.yaml"
            )
        node = node[part]
    if isinstance(node, dict):
        raise ConfigError(f"{where}: '{key}' is a section; name one setting, e.g. '{key}.{next(iter(node))}'")
    if key.split(".")[0] in FIXED_SECTIONS or key in FIXED_KEYS:
        raise ConfigError(
            f"{where}: '{key}' changes the data or the run's mode, which a sweep fixes once; "
            f"sweep strategy keys only (set it with --config)"
        )


def _expand(spec: SweepFile) -> list[dict[str, Any]]:
    """Grid rows (itertools.product order), subsampled or crossed with seeded random draws."""
    grid = [dict(zip(spec.grid, values, strict=True)) for values in itertools.product(*spec.grid.values())]
    rand = spec.random
    if rand is None:
        return grid
    rng = np.random.default_rng(rand.seed)
    if not rand.params:
        if rand.samples >= len(grid):
            return grid
        picked = np.sort(rng.choice(len(grid), size=rand.samples, replace=False))
        return [grid[i] for i in picked]
    draws = [{key: _draw(rng, how) for key, how in rand.params.items()} for _ in range(rand.samples)]
    return [g | d for g in grid for d in draws]


def _draw(rng: np.random.Generator, how: list[Any] | Range) -> Any:
    if isinstance(how, list):
        return how[int(rng.integers(len(how)))]
    if how.integer:
        return int(rng.integers(math.ceil(how.min), math.floor(how.max) + 1))
    return round(float(rng.uniform(how.min, how.max)), FLOAT_DECIMALS)


def _combination(index: int, params: dict[str, Any], base: Config) -> Combination:
    try:
        cfg = with_overrides(base, params)
    except ConfigError as exc:
        return Combination(index, params, None, str(exc).removeprefix("override: "))
    tree = cfg.to_dict()
    return Combination(index, {key: _lookup(tree, key) for key in params}, cfg)


def _lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node[part]
    return node


def check_rank_by(key: str, portfolio: bool | None = None) -> str:
    """`key` when it is a rankable metric key (a portfolio metric only for a `portfolio` sweep; None:
    not known yet); ConfigError otherwise."""
    if key in PORTFOLIO_KEYS and portfolio is False:
        raise ConfigError(
            f"--rank-by {key!r} is a portfolio metric (strategy.md 10.8); rank by another key, "
            "or sweep a config with portfolio.enabled: true"
        )
    if key not in RANK_KEYS and key not in PORTFOLIO_KEYS:
        raise ConfigError(
            f"--rank-by {key!r} is not a metric key; use one of {', '.join(RANK_KEYS)} "
            f"(portfolio sweeps also {', '.join(PORTFOLIO_KEYS)})"
        )
    return key


def rank_value(metrics: dict[str, Any], key: str) -> tuple[int, float]:
    """Sort key of a metrics dict for `key`: best first, undefined (None/NaN) last."""
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0.0)
    return (0, float(value) if key in LOWER_IS_BETTER else -float(value))


def rank_order(indices: Sequence[int], metrics: Sequence[dict[str, Any]], key: str) -> list[int]:
    """Positions 0..n-1 of `metrics`, best first by `key`; ties keep the lower combination index."""
    return sorted(range(len(metrics)), key=lambda i: (rank_value(metrics[i], key), indices[i]))


def metric_row(metrics: dict[str, Any], extra: Sequence[str] = ()) -> dict[str, Any]:
    """The table cells of one metrics dict: scalar keys (and `extra` ones), `exit_reasons` as JSON."""
    row = {key: metrics.get(key) for key in (*RANK_KEYS, *extra)}
    row["exit_reasons"] = json.dumps(metrics.get("exit_reasons") or {}, sort_keys=True)
    return row


def typed_frame(rows: list[dict[str, Any]], param_keys: Sequence[str]) -> pd.DataFrame:
    """Rows as a frame with stable dtypes: counts int64 (Int64 with a null), other metrics float64 (None ->
    NaN), also with an `is_`/`oos_` prefix; each parameter column one type (mixed types become JSON
    strings)."""
    frame = pd.DataFrame(rows)
    out = {}
    for col in frame.columns:
        values = frame[col].tolist()
        metric = col.split("_", 1)[1] if col.startswith(("is_", "oos_")) else col
        if metric in COUNT_KEYS:  # nullable only where a count is undefined (a portfolio's symbol rows)
            out[col] = frame[col].astype("int64" if frame[col].notna().all() else "Int64")
        elif metric in RANK_KEYS or metric in PORTFOLIO_KEYS:
            out[col] = pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
        elif col in param_keys:
            out[col] = param_column(values)
        else:
            out[col] = frame[col]
    return pd.DataFrame(out)


def param_column(values: list[Any]) -> pd.Series:
    """One parameter's values with a single dtype."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds <= {bool} and len(present) == len(values):
        return pd.Series(values, dtype="bool")
    if kinds <= {int} and len(present) == len(values):
        return pd.Series(values, dtype="int64")
    if kinds <= {int, float}:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kinds <= {str}:
        return pd.Series(values, dtype="object")
    return pd.Series([None if v is None else json.dumps(v) for v in values], dtype="object")


def results_table(
    sweep: Sweep,
    outcomes: Sequence[tuple[Combination, dict[str, dict], dict[str, Any]]],
    rank_by: str,
    portfolio: bool = False,
) -> pd.DataFrame:
    """The `sweep_results` table: per combination its aggregate row (symbol `*`) then one row per symbol,
    combinations ordered by rank (1 = best by `rank_by`, ties by combination index). A `portfolio`
    sweep's aggregate rows are the account's metrics, with PORTFOLIO_KEYS too."""
    order = rank_order([c.index for c, _, _ in outcomes], [agg for _, _, agg in outcomes], rank_by)
    extra = PORTFOLIO_KEYS if portfolio else ()
    rows = []
    for rank, pos in enumerate(order, start=1):
        combo, per_symbol, aggregate = outcomes[pos]
        head = {"rank": rank, "combination": combo.index}
        rows.append(head | {"symbol": AGGREGATE} | combo.params | metric_row(aggregate, extra))
        rows.extend(head | {"symbol": sym} | combo.params | metric_row(m) for sym, m in per_symbol.items())
    return typed_frame(rows, sweep.keys)
