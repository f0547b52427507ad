"""Configuration: frozen dataclasses over `defaults.yaml`, deep-merged user files, validated once.

Every section (built on orb.config_base) forbids unknown keys and is frozen. A field's rules are its
annotation's metadata (`Num` bounds, `Before`/`After` checks), a section's cross-field rules its `_check`;
pydantic applies them (orb.config_schema, imported only to validate). `load_config` returns a `Config`,
from the cache of validated configs (orb.config_cache) when the same input was validated before; errors
become one `ConfigError` line naming the key path, the bad value and what is allowed.
"""

import copy
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from orb import config_cache
from orb.config_base import After, Before, Num, Section
from orb.errors import ConfigError, cut, short

if TYPE_CHECKING:
    from orb.config_schema import Problem

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "defaults.yaml"
INTERVAL_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30}
MAX_TZ_LENGTH = 64  # longer than any IANA zone name
MAX_MESSAGE = 400  # characters of a config error line
TEXT_LIMIT = 1_000_000  # bytes of a config file read for the cache key: orb.safeyaml.MAX_BYTES


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


def _timezone(v: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    problem = f"unknown timezone {short(v)}; use an IANA name like America/New_York"
    if len(v) > MAX_TZ_LENGTH:
        raise ValueError(problem)
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(problem) from exc
    return v


def _named(allowed: tuple[str, ...], what: str) -> After:
    """One of `allowed`, else 'unknown <what> ...; allowed: ...'."""

    def check(v: str) -> str:
        if v not in allowed:
            raise ValueError(f"unknown {what} {short(v)}; allowed: {', '.join(allowed)}")
        return v

    return After(check)


def _either(*allowed: str) -> After:
    """One of `allowed`, else "expected 'a' or 'b', got ..."."""

    def check(v: str) -> str:
        if v not in allowed:
            raise ValueError(f"expected {' or '.join(repr(a) for a in allowed)}, got {short(v)}")
        return v

    return After(check)


def _feed(v: str) -> str:
    if v not in ("sip", "iex", "delayed_sip"):
        raise ValueError(f"expected sip, iex or delayed_sip, got {v!r}")
    return v


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


@dataclass(frozen=True)
class SessionConfig(Section):
    """The exchange's timezone and calendar (every session decision)."""

    timezone: Annotated[str, After(_timezone)] = "America/New_York"
    calendar: str = "XNYS"


@dataclass(frozen=True)
class VendorConfig(Section):
    """Shared settings of a market-data vendor (data.alpaca, data.massive, data.databento)."""

    url: str | None = None  # base URL; None: the ORB_<VENDOR>_URL environment variable, else the vendor's
    requests_per_minute: Annotated[float, Num(gt=0)] = 200.0
    retries: Annotated[int, Num(ge=0, le=10)] = 3
    backoff_seconds: Annotated[float, Num(ge=0)] = 1.0


@dataclass(frozen=True)
class AlpacaConfig(VendorConfig):
    """data.alpaca: alpaca-py historical stock bars."""

    feed: Annotated[str, After(_feed)] = "sip"


@dataclass(frozen=True)
class MassiveConfig(VendorConfig):
    """data.massive: Massive (formerly Polygon.io) minute aggregates."""

    requests_per_minute: Annotated[float, Num(gt=0)] = 5.0


@dataclass(frozen=True)
class DatabentoConfig(VendorConfig):
    """data.databento: Databento Historical ohlcv-1m."""

    requests_per_minute: Annotated[float, Num(gt=0)] = 600.0
    dataset: str = "XNAS.ITCH"
    max_cost: Annotated[float, Num(ge=0)] | None = None


DATA_SOURCES = ("yahoo", "alpaca", "massive", "databento")


@dataclass(frozen=True)
class DataConfig(Section):
    """Where bars come from and how files and bad bars are read."""

    source: Annotated[str, _named(DATA_SOURCES, "data source")] = "yahoo"
    interval: Annotated[str, _named(tuple(INTERVAL_MINUTES), "interval")] = "1m"
    seed: Annotated[int, Num()] = 42
    warmup_sessions: Annotated[int, Num(ge=0, le=400)] = 40
    file_timezone: Annotated[str, After(lambda v: v if v == "auto" else _timezone(v))] = "auto"
    file_bar_label: Annotated[str, _either("auto", "start", "end")] = "auto"
    adjustment: Annotated[str, _either("split", "raw")] = "split"
    bad_bars: Annotated[str, _either("skip", "error")] = "skip"
    max_jump: Annotated[float, Num(gt=0)] = 0.5
    concurrency: Annotated[int, Num(ge=1, le=64)] = 4
    yahoo_retries: Annotated[int, Num(ge=0, le=10)] = 3
    yahoo_backoff_seconds: Annotated[float, Num(ge=0)] = 2.0
    alpaca: AlpacaConfig = AlpacaConfig()
    massive: MassiveConfig = MassiveConfig()
    databento: DatabentoConfig = DatabentoConfig()

    @property
    def interval_minutes(self) -> int:
        return INTERVAL_MINUTES[self.interval]


@dataclass(frozen=True)
class OrbConfig(Section):
    """The opening range: its length (fixed or adaptive), width bounds and bar checks."""

    base_minutes: Annotated[int, Num(gt=0, le=390)] = 15
    adaptive: bool = False
    short_minutes: Annotated[int, Num(gt=0, le=390)] = 10
    long_minutes: Annotated[int, Num(gt=0, le=390)] = 30
    adaptive_low: Annotated[float, Num(gt=0)] = 0.8
    adaptive_high: Annotated[float, Num(gt=0)] = 1.2
    atr_period: Annotated[int, Num(ge=1, le=200)] = 14
    min_width_atr: Annotated[float, Num(ge=0)] | None = 0.25
    max_width_atr: Annotated[float, Num(ge=0)] | None = 1.75
    validate_or: bool = field(default=False, metadata={"alias": "validate"})

    __pydantic_config__ = {**Section.__pydantic_config__, "populate_by_name": True}

    def _check(self) -> None:
        if self.adaptive_low > self.adaptive_high:
            raise ValueError("adaptive_low must be <= adaptive_high")
        if (
            self.min_width_atr is not None
            and self.max_width_atr is not None
            and self.min_width_atr > self.max_width_atr
        ):
            raise ValueError("min_width_atr must be <= max_width_atr")


@dataclass(frozen=True)
class EntryConfig(Section):
    """How a breakout enters: mode, sides, trigger buffers, last entry time."""

    mode: EntryMode = EntryMode.STOP
    direction: Direction = Direction.BOTH
    buffer_fixed: Annotated[float, Num(ge=0)] = 0.0
    buffer_atr: Annotated[float, Num(ge=0)] = 0.0
    cutoff: Annotated[str, Before(_parse_hhmm)] = "15:00"

    def _check(self) -> None:
        if self.mode is EntryMode.OR_CANDLE and self.direction is not Direction.BOTH:
            raise ValueError(
                f"entry.direction={self.direction} is not allowed with entry.mode: or_candle "
                "(that mode already trades the candle's direction); use entry.direction: both"
            )


@dataclass(frozen=True)
class FactorConfig(Section):
    """One confluence factor: on or off, and its score weight."""

    enabled: bool = True
    weight: Annotated[float, Num(ge=0)] = 1.0


@dataclass(frozen=True)
class RelVolumeConfig(FactorConfig):
    """The relative-volume factor: OR volume against prior sessions'."""

    lookback_sessions: Annotated[int, Num(ge=1, le=400)] = 14
    min_ratio: Annotated[float, Num(ge=0)] = 1.0


@dataclass(frozen=True)
class PriceActionConfig(FactorConfig):
    """The price-action factor: highs and lows against `pivot_len` bars earlier."""

    pivot_len: Annotated[int, Num(ge=1, le=390)] = 3


@dataclass(frozen=True)
class AdxConfig(FactorConfig):
    """The daily ADX: a weak trend raises the required score."""

    enabled: bool = False
    period: Annotated[int, Num(ge=1, le=200)] = 14
    threshold: Annotated[float, Num(ge=0, le=100)] = 18.0


@dataclass(frozen=True)
class ConfluenceConfig(Section):
    """The confluence score an entry needs, and its factors."""

    enabled: bool = True
    required: Annotated[float, Num(ge=0)] = 2.0
    weak_trend_required: Annotated[float, Num(ge=0)] = 3.0
    rel_volume: RelVolumeConfig = RelVolumeConfig()
    vwap: FactorConfig = FactorConfig()
    price_action: PriceActionConfig = PriceActionConfig()
    profile: FactorConfig = FactorConfig()
    adx: AdxConfig = AdxConfig()

    def _check(self) -> None:
        if self.weak_trend_required < self.required:
            raise ValueError("weak_trend_required must be >= required")


FACTOR_NAMES = ("rel_volume", "vwap", "price_action", "profile")


@dataclass(frozen=True)
class TradeConfig(Section):
    """Stops, targets (partials or one), breakeven and the flatten time."""

    stop_mode: StopMode = StopMode.ATR_CAPPED
    stop_buffer: Annotated[float, Num(ge=0)] = 0.0
    atr_stop_mult: Annotated[float, Num(gt=0)] = 0.8
    partials: bool = True
    t1_pct: Annotated[float, Num(ge=0, le=1)] = 0.5
    t1_r: Annotated[float, Num(gt=0)] = 1.0
    t2_pct: Annotated[float, Num(ge=0, le=1)] = 0.25
    t2_r: Annotated[float, Num(gt=0)] = 1.5
    runner_r: Annotated[float, Num(gt=0)] = 3.0
    target_r: Annotated[float, Num(gt=0)] | None = 2.0  # None: no target, exit by stop or eod (11.2)
    be_buffer: Annotated[float, Num()] = 0.0
    same_bar: SameBar = SameBar.PESSIMISTIC
    flatten_time: Annotated[str, Before(_parse_hhmm)] | None = None

    def _check(self) -> None:
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


@dataclass(frozen=True)
class GovernanceConfig(Section):
    """Per-session limits: signals, loss lockout, daily loss in R."""

    max_signals_per_day: Annotated[int, Num(ge=1)] = 2
    lockout_after_losses: Annotated[int, Num(ge=0)] = 1
    max_daily_loss_r: Annotated[float, Num(gt=0)] | None = 3.0


@dataclass(frozen=True)
class RiskConfig(Section):
    """Capital, risk per trade and the leverage cap."""

    initial_capital: Annotated[float, Num(gt=0)] = 100_000.0
    risk_per_trade: Annotated[float, Num(gt=0, le=1)] = 0.01
    max_leverage: Annotated[float, Num(gt=0)] = 4.0


@dataclass(frozen=True)
class CostsConfig(Section):
    """Slippage and commission per share."""

    slippage_per_share: Annotated[float, Num(ge=0)] = 0.01
    commission_per_share: Annotated[float, Num(ge=0)] = 0.0035


@dataclass(frozen=True)
class MetricsConfig(Section):
    """Annualisation and the risk-free rate of Sharpe/Sortino."""

    periods_per_year: Annotated[int, Num(gt=0)] = 252
    risk_free_rate: Annotated[float, Num()] = 0.0


@dataclass(frozen=True)
class PortfolioConfig(Section):
    """strategy.md 10: one account, the daily universe's top `max_positions` trade."""

    enabled: bool = False
    max_positions: Annotated[int, Num(ge=1, le=10_000)] = 20
    benchmark: Annotated[str, After(lambda v: v.strip().upper())] | None = None


@dataclass(frozen=True)
class UniverseConfig(Section):
    """strategy.md 10.3-10.4: eligibility bounds (None disables one) and their lookback."""

    min_price: Annotated[float, Num(ge=0)] | None = None
    min_avg_volume: Annotated[float, Num(ge=0)] | None = None
    min_atr: Annotated[float, Num(ge=0)] | None = None
    min_rel_volume: Annotated[float, Num(ge=0)] | None = None
    lookback_sessions: Annotated[int, Num(ge=1, le=400)] = 14


@dataclass(frozen=True)
class Config(Section):
    """The whole config: one field per section of defaults.yaml."""

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

    def _check(self) -> None:
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
    from orb.safeyaml import read_yaml_file  # imports PyYAML: not needed on a cache hit

    data = read_yaml_file(path, f"config file {path}", "--config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (session, orb, ...)")
    return data


def _describe(problem: "Problem") -> str:
    path = ".".join(str(p) for p in problem.loc) or "(top level)"
    if problem.type == "extra_forbidden":
        return f"unknown config key '{path}'; check the spelling against defaults.yaml"
    message = problem.msg.removeprefix("Value error, ")
    if isinstance(problem.input, dict):
        return f"config section '{path}': {message}" if problem.loc else f"config: {message}"
    return f"config key '{path}' = {short(problem.input)}: {message}"


def build_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a merged mapping; raise ConfigError with one line for the first problem."""
    from orb.config_schema import validate

    checked = validate(data)
    if isinstance(checked, Config):
        return checked
    line = f"{source}: {_describe(checked)}"
    raise ConfigError(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...")


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
    import yaml

    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return _read_yaml(DEFAULTS_PATH)
    return yaml.load(DEFAULTS_PATH.read_text(encoding="utf-8"), Loader=loader)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """defaults.yaml, deep-merged with the user's file, then with CLI overrides (dotted keys); the
    Config validated before from the same texts when the cache has it (no YAML parsed then)."""
    texts = _texts_key(path, overrides)
    stored = config_cache.read(texts) if texts else None
    if stored is not None:
        try:
            return Config.from_dict(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a damaged entry: validated again and overwritten below
    config = _load_config(path, overrides)
    if texts:
        config_cache.write(texts, config.canonical_json())
    return config


def _texts_key(path: str | Path | None, overrides: dict[str, Any] | None) -> str | None:
    """The cache key of defaults.yaml's and the user file's texts and the overrides; None when a file
    cannot be read (the load then says why)."""
    texts = {"defaults": _text(DEFAULTS_PATH), "file": None if path is None else _text(Path(path))}
    if texts["defaults"] is None or (path is not None and texts["file"] is None):
        return None
    return config_cache.key({**texts, "overrides": overrides or {}})


def _text(path: Path) -> str | None:
    """The UTF-8 text of a file of at most TEXT_LIMIT bytes (the YAML reader refuses larger), else None."""
    try:
        with path.open("rb") as handle:
            data = handle.read(TEXT_LIMIT + 1)
        return data.decode("utf-8") if len(data) <= TEXT_LIMIT else None
    except (OSError, UnicodeDecodeError):
        return None


def _load_config(path: str | Path | None, overrides: dict[str, Any] | None) -> Config:
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
    from orb.safeyaml import parse_yaml

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
