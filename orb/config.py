"""Configuration: pydantic models over `defaults.yaml`, deep-merged user files, validated once.

Every model forbids unknown keys and is frozen. `load_config` returns a `Config`; errors become one
`ConfigError` line naming the key path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orb.errors import ConfigError
from orb.safeyaml import cut, parse_yaml, read_yaml_file, short

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "defaults.yaml"
INTERVAL_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30}
MAX_TZ_LENGTH = 64  # longer than any IANA zone name
MAX_MESSAGE = 400  # characters of a config error line


class _Model(BaseModel):
    """Frozen, no unknown keys, finite floats only, and a bool is not a number (YAML `true` is not 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in _numeric_fields(cls):
            raise ValueError("expected a number, not true/false")
        return value


@functools.cache
def _numeric_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the fields of `model` typed int or float (optionally None)."""
    numeric = set()
    for name, field in model.model_fields.items():
        kinds = set(get_args(field.annotation)) if get_origin(field.annotation) else {field.annotation}
        if kinds - {type(None)} and kinds - {type(None)} <= {int, float}:
            numeric.add(name)
    return frozenset(numeric)


def _parse_hhmm(value: Any) -> str:
    """Accept 'HH:MM' (YAML may also give minutes-since-midnight for unquoted 15:00)."""
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 sexagesimal: 15:00 -> 900
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str):
        raise ValueError("expected a local time 'HH:MM'")
    try:
        hh, mm = value.split(":")
        time(int(hh), int(mm))
    except ValueError as exc:
        raise ValueError(f"expected a local time 'HH:MM', got {short(value)}") from exc
    return f"{int(hh):02d}:{int(mm):02d}"


def hhmm_minutes(value: str) -> int:
    """Minutes after midnight of an 'HH:MM' string."""
    hh, mm = value.split(":")
    return int(hh) * 60 + int(mm)


class EntryMode(StrEnum):
    STOP = "stop"
    CLOSE = "close"
    OR_CANDLE = "or_candle"


class Direction(StrEnum):
    """strategy.md 11.1: which sides the stop and close entry modes may trade."""

    BOTH = "both"
    LONG = "long"
    SHORT = "short"
    OR_CANDLE = "or_candle"


class StopMode(StrEnum):
    OR_OPPOSITE = "or_opposite"
    ATR = "atr"
    ATR_CAPPED = "atr_capped"


class SameBar(StrEnum):
    PESSIMISTIC = "pessimistic"
    OHLC_PATH = "ohlc_path"


class SessionConfig(_Model):
    timezone: str = "America/New_York"
    calendar: str = "XNYS"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        problem = f"unknown timezone {short(v)}; use an IANA name like America/New_York"
        if len(v) > MAX_TZ_LENGTH:
            raise ValueError(problem)
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(problem) from exc
        return v


class VendorConfig(_Model):
    """Shared settings of a market-data vendor (data.alpaca, data.massive, data.databento)."""

    url: str | None = None  # base URL; None: the ORB_<VENDOR>_URL environment variable, else the vendor's
    requests_per_minute: float = Field(200.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0)


class AlpacaConfig(VendorConfig):
    feed: str = "sip"

    @field_validator("feed")
    @classmethod
    def _feed(cls, v: str) -> str:
        if v not in ("sip", "iex", "delayed_sip"):
            raise ValueError(f"expected sip, iex or delayed_sip, got {v!r}")
        return v


class MassiveConfig(VendorConfig):
    requests_per_minute: float = Field(5.0, gt=0)


class DatabentoConfig(VendorConfig):
    requests_per_minute: float = Field(600.0, gt=0)
    dataset: str = "XNAS.ITCH"
    max_cost: float | None = Field(None, ge=0)


DATA_SOURCES = ("yahoo", "alpaca", "massive", "databento")


class DataConfig(_Model):
    source: str = "yahoo"
    interval: str = "1m"
    seed: int = 42
    warmup_sessions: int = Field(40, ge=0, le=400)
    file_timezone: str = "auto"
    file_bar_label: str = "auto"
    adjustment: str = "split"
    bad_bars: str = "skip"
    max_jump: float = Field(0.5, gt=0)
    concurrency: int = Field(4, ge=1, le=64)
    yahoo_retries: int = Field(3, ge=0, le=10)
    yahoo_backoff_seconds: float = Field(2.0, ge=0)
    alpaca: AlpacaConfig = AlpacaConfig()
    massive: MassiveConfig = MassiveConfig()
    databento: DatabentoConfig = DatabentoConfig()

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if v not in INTERVAL_MINUTES:
            raise ValueError(f"unknown interval {short(v)}; allowed: {', '.join(INTERVAL_MINUTES)}")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v not in DATA_SOURCES:
            raise ValueError(f"unknown data source {short(v)}; allowed: {', '.join(DATA_SOURCES)}")
        return v

    @field_validator("file_timezone")
    @classmethod
    def _file_tz(cls, v: str) -> str:
        return v if v == "auto" else SessionConfig._tz(v)

    @field_validator("file_bar_label", "adjustment", "bad_bars")
    @classmethod
    def _choice(cls, v: str, info) -> str:
        allowed = {
            "file_bar_label": ("auto", "start", "end"),
            "adjustment": ("split", "raw"),
            "bad_bars": ("skip", "error"),
        }[info.field_name]
        if v not in allowed:
            raise ValueError(f"expected {' or '.join(repr(a) for a in allowed)}, got {short(v)}")
        return v

    @property
    def interval_minutes(self) -> int:
        return INTERVAL_MINUTES[self.interval]


class OrbConfig(_Model):
    base_minutes: int = Field(15, gt=0, le=390)
    adaptive: bool = False
    short_minutes: int = Field(10, gt=0, le=390)
    long_minutes: int = Field(30, gt=0, le=390)
    adaptive_low: float = Field(0.8, gt=0)
    adaptive_high: float = Field(1.2, gt=0)
    atr_period: int = Field(14, ge=1, le=200)
    min_width_atr: float | None = Field(0.25, ge=0)
    max_width_atr: float | None = Field(1.75, ge=0)
    validate_or: bool = Field(False, alias="validate")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> OrbConfig:
        if self.adaptive_low > self.adaptive_high:
            raise ValueError("adaptive_low must be <= adaptive_high")
        if (
            self.min_width_atr is not None
            and self.max_width_atr is not None
            and self.min_width_atr > self.max_width_atr
        ):
            raise ValueError("min_width_atr must be <= max_width_atr")
        return self


class EntryConfig(_Model):
    mode: EntryMode = EntryMode.STOP
    direction: Direction = Direction.BOTH
    buffer_fixed: float = Field(0.0, ge=0)
    buffer_atr: float = Field(0.0, ge=0)
    cutoff: str = "15:00"

    _cutoff = field_validator("cutoff", mode="before")(classmethod(lambda cls, v: _parse_hhmm(v)))

    @model_validator(mode="after")
    def _direction(self) -> EntryConfig:
        if self.mode is EntryMode.OR_CANDLE and self.direction is not Direction.BOTH:
            raise ValueError(
                f"entry.direction={self.direction} is not allowed with entry.mode: or_candle "
                "(that mode already trades the candle's direction); use entry.direction: both"
            )
        return self


class FactorConfig(_Model):
    enabled: bool = True
    weight: float = Field(1.0, ge=0)


class RelVolumeConfig(FactorConfig):
    lookback_sessions: int = Field(14, ge=1, le=400)
    min_ratio: float = Field(1.0, ge=0)


class PriceActionConfig(FactorConfig):
    pivot_len: int = Field(3, ge=1, le=390)


class AdxConfig(FactorConfig):
    enabled: bool = False
    period: int = Field(14, ge=1, le=200)
    threshold: float = Field(18.0, ge=0, le=100)


class ConfluenceConfig(_Model):
    enabled: bool = True
    required: float = Field(2, ge=0)
    weak_trend_required: float = Field(3, ge=0)
    rel_volume: RelVolumeConfig = RelVolumeConfig()
    vwap: FactorConfig = FactorConfig()
    price_action: PriceActionConfig = PriceActionConfig()
    profile: FactorConfig = FactorConfig()
    adx: AdxConfig = AdxConfig()

    @model_validator(mode="after")
    def _ordered(self) -> ConfluenceConfig:
        if self.weak_trend_required < self.required:
            raise ValueError("weak_trend_required must be >= required")
        return self


FACTOR_NAMES = ("rel_volume", "vwap", "price_action", "profile")


class TradeConfig(_Model):
    stop_mode: StopMode = StopMode.ATR_CAPPED
    stop_buffer: float = Field(0.0, ge=0)
    atr_stop_mult: float = Field(0.8, gt=0)
    partials: bool = True
    t1_pct: float = Field(0.5, ge=0, le=1)
    t1_r: float = Field(1.0, gt=0)
    t2_pct: float = Field(0.25, ge=0, le=1)
    t2_r: float = Field(1.5, gt=0)
    runner_r: float = Field(3.0, gt=0)
    target_r: float | None = Field(2.0, gt=0)  # None: no target, exit by stop or eod (11.2)
    be_buffer: float = 0.0
    same_bar: SameBar = SameBar.PESSIMISTIC
    flatten_time: str | None = None

    @field_validator("flatten_time", mode="before")
    @classmethod
    def _flatten(cls, v: Any) -> str | None:
        return None if v is None else _parse_hhmm(v)

    @model_validator(mode="after")
    def _ordered(self) -> TradeConfig:
        if not self.t1_r < self.t2_r < self.runner_r:
            raise ValueError(
                f"targets must satisfy t1_r < t2_r < runner_r, got {self.t1_r}, {self.t2_r}, {self.runner_r}"
            )
        if self.target_r is None and self.partials:
            raise ValueError(
                "trade.target_r: null (no target) needs trade.partials: false; set partials to false"
            )
        if self.t1_pct + self.t2_pct > 1 + 1e-12:
            raise ValueError(f"t1_pct + t2_pct must be <= 1, got {self.t1_pct + self.t2_pct}")
        return self


class GovernanceConfig(_Model):
    max_signals_per_day: int = Field(2, ge=1)
    lockout_after_losses: int = Field(1, ge=0)
    max_daily_loss_r: float | None = Field(3.0, gt=0)


class RiskConfig(_Model):
    initial_capital: float = Field(100_000.0, gt=0)
    risk_per_trade: float = Field(0.01, gt=0, le=1)
    max_leverage: float = Field(4.0, gt=0)


class CostsConfig(_Model):
    slippage_per_share: float = Field(0.01, ge=0)
    commission_per_share: float = Field(0.0035, ge=0)


class MetricsConfig(_Model):
    periods_per_year: int = Field(252, gt=0)
    risk_free_rate: float = 0.0


class PortfolioConfig(_Model):
    """strategy.md 10: one account, the daily universe's top `max_positions` trade."""

    enabled: bool = False
    max_positions: int = Field(20, ge=1, le=10_000)
    benchmark: str | None = None

    @field_validator("benchmark")
    @classmethod
    def _upper(cls, v: str | None) -> str | None:
        return None if v is None else v.strip().upper()


class UniverseConfig(_Model):
    """strategy.md 10.3-10.4: eligibility bounds (None disables one) and their lookback."""

    min_price: float | None = Field(None, ge=0)
    min_avg_volume: float | None = Field(None, ge=0)
    min_atr: float | None = Field(None, ge=0)
    min_rel_volume: float | None = Field(None, ge=0)
    lookback_sessions: int = Field(14, ge=1, le=400)


class Config(_Model):
    session: SessionConfig = SessionConfig()
    data: DataConfig = DataConfig()
    orb: OrbConfig = OrbConfig()
    entry: EntryConfig = EntryConfig()
    confluence: ConfluenceConfig = ConfluenceConfig()
    trade: TradeConfig = TradeConfig()
    governance: GovernanceConfig = GovernanceConfig()
    risk: RiskConfig = RiskConfig()
    costs: CostsConfig = CostsConfig()
    metrics: MetricsConfig = MetricsConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    universe: UniverseConfig = UniverseConfig()

    @model_validator(mode="after")
    def _cross(self) -> Config:
        step = self.data.interval_minutes
        lengths = {"orb.base_minutes": self.orb.base_minutes}
        if self.orb.adaptive:
            lengths |= {
                "orb.short_minutes": self.orb.short_minutes,
                "orb.long_minutes": self.orb.long_minutes,
            }
        for key, minutes in lengths.items():
            if minutes % step:
                raise ValueError(
                    f"{key}={minutes} is not a whole number of {self.data.interval} bars; "
                    f"use a multiple of {step}"
                )
        if self.portfolio.enabled and self.orb.adaptive:
            raise ValueError(
                "orb.adaptive: true is not allowed with portfolio.enabled: true (strategy.md 10.3); "
                "set orb.adaptive to false"
            )
        cutoff = hhmm_minutes(self.entry.cutoff)
        if not 9 * 60 + 30 < cutoff <= 16 * 60:
            raise ValueError(f"entry.cutoff={self.entry.cutoff} must be inside the session (09:30-16:00]")
        if (
            self.trade.flatten_time is not None
            and not 9 * 60 + 30 < hhmm_minutes(self.trade.flatten_time) < 16 * 60
        ):
            raise ValueError(
                f"trade.flatten_time={self.trade.flatten_time} must be inside the session (09:30-16:00)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with the file's key names (re-loadable as --config)."""
        return self.model_dump(mode="json", by_alias=True)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `override` merged into `base`, recursing into nested dicts."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml_file(path, f"config file {path}", "--config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (session, orb, ...)")
    return data


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown config key '{path}'; check the spelling against defaults.yaml"
    value = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(value, dict):
        return f"config section '{path}': {message}" if error["loc"] else f"config: {message}"
    return f"config key '{path}' = {short(value)}: {message}"


def build_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a merged mapping; raise ConfigError with one line for the first problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        line = f"{source}: {_describe(exc.errors()[0])}"
        raise ConfigError(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...") from None


def defaults_data() -> dict[str, Any]:
    """defaults.yaml as a new mapping. It ships with orb, so libyaml's C loader reads it when PyYAML
    has one (about 10x the bounded pure-Python loader that user files go through; tests check both
    give the same mapping and that the file passes the bounded loader's checks)."""
    try:
        stat = DEFAULTS_PATH.stat()
    except OSError:
        return _read_yaml(DEFAULTS_PATH)  # the bounded reader's one-line error
    return copy.deepcopy(_parsed_defaults(stat.st_mtime_ns, stat.st_size))


@functools.cache
def _parsed_defaults(mtime_ns: int, size: int) -> dict[str, Any]:
    """defaults.yaml parsed, once per version of the file (its mtime and size)."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return _read_yaml(DEFAULTS_PATH)
    return yaml.load(DEFAULTS_PATH.read_text(encoding="utf-8"), Loader=loader)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """defaults.yaml, deep-merged with the user's file, then with CLI overrides (dotted keys)."""
    data = defaults_data()
    source = "defaults.yaml"
    if path is not None:
        data = deep_merge(data, _read_yaml(Path(path)))
        source = str(path)
    for dotted, value in (overrides or {}).items():
        data = deep_merge(data, _nest(dotted, value))
    if overrides:
        source += f" with command-line {', '.join(f'{k}={cut(str(v))}' for k, v in overrides.items())}"
    return build_config(data, source)


_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}")


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value` of `--set` as (dotted key, YAML value), read with the bounds of a config file;
    ConfigError names the override."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATH.fullmatch(key):
        raise ConfigError(
            f"--set {cut(text)!r}: use key.path=value with a dotted config key, e.g. orb.base_minutes=5"
        )
    return key, parse_yaml(raw, f"--set {key}")


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def with_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A new Config with dotted-key overrides applied (and validated)."""
    data = config.to_dict()
    for dotted, value in overrides.items():
        data = deep_merge(data, _nest(dotted, value))
    return build_config(data, "override")
