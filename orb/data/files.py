"""Local bars from CSV or Parquet: one file (one symbol) or a folder of SYMBOL.csv / SYMBOL.parquet.

Columns are matched case-insensitively (time column: timestamp, datetime, date, time, or separate date
and time columns; then open, high, low, close, volume; other columns are ignored). Headerless
`;`-separated NinjaTrader exports (`YYYYMMDD HHMMSS;open;high;low;close;volume`) are detected. Naive
timestamps are in `data.file_timezone`; `data.file_bar_label: end` shifts bar-end stamps back one
bar. Bars finer than `data.interval` are aggregated to it.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.bars import (
    PRICE_COLUMNS,
    bars_from_block,
    history_needs,
    resample_bars,
    spacing_minutes,
    tidy_order,
    utc_index,
)
from orb.data.filesniff import decide, to_bar_start_utc
from orb.errors import DataError, NoDataError, RequestError
from orb.sessions import assign_sessions, schedule

SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
TIME_NAMES = ("timestamp", "datetime", "date_time", "time", "date")
NINJATRADER = re.compile(r"^\d{8} \d{6};")
DBN_SUFFIXES = (".dbn.zst", ".dbn")
FIX = "pass a CSV, Parquet or DBN file of bars, or a folder with SYMBOL.csv / SYMBOL.parquet files"


def is_dbn(path: Path) -> bool:
    return path.name.lower().endswith(DBN_SUFFIXES)


def resolve_path(data_path: Path, symbol: str) -> Path:
    """The file holding `symbol`: `data_path` itself, or SYMBOL.csv / SYMBOL.parquet in that folder."""
    path = Path(data_path)
    if not path.exists():
        raise DataError(f"--data {path} does not exist; {FIX}")
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES and not is_dbn(path):
            raise DataError(f"--data {path} is neither .csv nor .parquet (nor .dbn.zst); {FIX}")
        return path
    matches = sorted(
        p
        for p in path.iterdir()
        if (p.stem.upper() == symbol and p.suffix.lower() in SUFFIXES)
        or (is_dbn(p) and p.name.split(".")[0].upper() == symbol)
    )
    if not matches:
        raise DataError(f"folder {path} has no file for {symbol}; add {symbol}.csv or {symbol}.parquet there")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise DataError(f"folder {path} has several files for {symbol} ({names}); keep only one")
    return matches[0]


def check_shared_file(data_path: Path, symbols: tuple[str, ...]) -> None:
    """RequestError when one file is given for several symbols but has no `symbol` column to split by."""
    path = Path(data_path)
    if len(symbols) < 2 or not path.is_file() or is_dbn(path):
        return
    try:
        if SUFFIXES.get(path.suffix.lower()) == "parquet":
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
        else:
            with path.open(encoding="utf-8-sig") as handle:
                first_line = handle.readline()
            columns = [] if NINJATRADER.match(first_line) else first_line.replace(";", ",").split(",")
    except Exception:  # unreadable: the load reports it with the file's name
        return
    if "symbol" not in {str(c).strip().lower() for c in columns}:
        raise RequestError(
            f"--data {path} has no symbol column, so it cannot hold {', '.join(symbols)}; "
            f"pass one file per symbol as --data {symbols[0]}=FILE {symbols[1]}=FILE2, "
            f"or a folder of SYMBOL.csv files"
        )


def _read_raw(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The file as a frame with lower-case column names, and the time format when it is known.

    Headerless NinjaTrader exports get the columns timestamp, open, high, low, close, volume.
    """
    time_format = None
    if is_dbn(path):
        from orb.data.databento import read_dbn_file  # imports requests: only for DBN files

        return read_dbn_file(path), None
    try:
        if SUFFIXES[path.suffix.lower()] == "parquet":
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex):
                frame = frame.reset_index()
        else:
            with path.open(encoding="utf-8-sig") as handle:
                first_line = handle.readline()
            if NINJATRADER.match(first_line):
                names = ["timestamp", *PRICE_COLUMNS, "volume"]
                frame = pd.read_csv(path, sep=";", header=None, names=names, dtype={"timestamp": str})
                time_format = "%Y%m%d %H%M%S"
            else:
                sep = max((",", ";", "\t"), key=first_line.count)
                frame = pd.read_csv(path, sep=sep)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"--data file {path} cannot be read ({exc}); check that it exists and is readable"
        ) from None
    except Exception as exc:  # parser errors of pandas / pyarrow
        raise DataError(
            f"--data file {path} is not a readable {path.suffix} file ({type(exc).__name__}); {FIX}"
        ) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame, time_format


def _timestamps(frame: pd.DataFrame, path: Path, time_format: str | None) -> tuple[pd.Series, str]:
    """The parsed time column (naive or tz-aware) and its name."""
    columns = set(frame.columns)
    if {"date", "time"} <= columns and not any(n in columns for n in TIME_NAMES[:3]):
        raw, name = frame["date"].astype(str) + " " + frame["time"].astype(str), "date + time"
    else:
        name = next((n for n in TIME_NAMES if n in columns), None)
        if name is None:
            raise DataError(
                f"--data file {path} has no time column (columns: {', '.join(frame.columns)}); "
                f"name it timestamp, datetime or date"
            )
        raw = frame[name]
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw):
        return raw, name
    try:
        parsed = pd.to_datetime(raw, errors="coerce", format=time_format)
    except (ValueError, TypeError):  # mixed UTC offsets (e.g. across a DST change)
        parsed = pd.to_datetime(raw, errors="coerce", utc=True)
    bad = parsed.isna() & raw.notna()
    if bad.any():
        raise DataError(
            f"--data file {path}: {int(bad.sum())} values of column {name!r} are not timestamps "
            f"(first: {raw[bad].iloc[0]!r}); use e.g. 2024-01-02 09:30:00"
        )
    return parsed, name


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64, non-numeric values as NaN."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")


def _read_stamps(stamps: pd.Series, volume: np.ndarray, path: Path, config: Config) -> pd.DatetimeIndex:
    """UTC bar starts of the file's stamps, read as `data.file_timezone` / `file_bar_label` say or as
    inferred under `auto` (the decision is logged with its evidence)."""
    index = pd.DatetimeIndex(stamps)
    label = config.data.file_bar_label
    if is_dbn(path) and label == "auto":
        label = "start"  # DBN ts_event is the bar start
    decision = decide(
        index,
        volume,
        path=path,
        timezone=config.data.file_timezone,
        label=label,
        calendar=config.session.calendar,
        exchange_tz=config.session.timezone,
    )
    if decision.note:
        logger.info(decision.note)
    return to_bar_start_utc(index, decision.timezone, decision.label, decision.step)


def _out_of_bounds(stamps: pd.Series, path: Path) -> str:
    """The message for stamps that nanosecond time cannot hold (years before 1678 or after 2261)."""
    bad = np.flatnonzero((pd.DatetimeIndex(stamps).year < 1678) | (pd.DatetimeIndex(stamps).year > 2261))
    count = f"{len(bad)} timestamp{'s' if len(bad) != 1 else ''}" if len(bad) else "timestamps"
    first = f" (first: {stamps.iloc[bad[0]]})" if len(bad) else ""
    return f"--data file {path} holds {count} outside the years 1678-2261{first}; fix or remove those rows"


def load_file(
    data_path: Path,
    symbol: str,
    *,
    config: Config,
    start: date | None,
    first: date | None,
    last: date | None,
) -> tuple[pd.DataFrame, Path, list[str]]:
    """(bars, file, warnings): the regular-hours bars of sessions first..last from the symbol's file.

    `first`/`last` None mean the file's own first/last day; `start` None means no warm-up check."""
    path = resolve_path(data_path, symbol)
    frame, time_format = _read_raw(path)
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in frame.columns]
    if missing:
        raise DataError(
            f"--data file {path} lacks the column(s) {', '.join(missing)} "
            f"(has: {', '.join(frame.columns)}); rename them to open, high, low, close, volume"
        )
    if "symbol" in frame.columns:
        names = frame["symbol"].astype(str).str.strip().str.upper()
        if not (names == symbol).any():
            held = sorted(names.unique())
            what = f"several symbols but none is {symbol}" if len(held) > 1 else f"only {held[0]}"
            raise DataError(
                f"--data file {path} holds {what} (symbol column: {', '.join(held[:5])}); "
                f"check the symbol, or pass --data {symbol}=PATH with {symbol}'s own file"
            )
        frame = frame[names == symbol]
    stamps, _ = _timestamps(frame, path, time_format)
    volume = _numbers(frame["volume"])
    try:
        index = _read_stamps(stamps, volume, path, config)
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise DataError(_out_of_bounds(stamps, path)) from None
    known = ~index.isna()
    rows = None if known.all() else np.flatnonzero(known)  # the file's rows in use, in time order
    ns = index.asi8 if rows is None else index.asi8[rows]
    order, warnings = tidy_order(ns, symbol)
    if order is not None:
        rows, ns = (order if rows is None else rows[order]), ns[order]
    if (first is None or last is None) and len(ns):
        tz = config.session.timezone
        first = first or (pd.Timestamp(ns[0], tz="UTC").tz_convert(tz) - pd.Timedelta(days=1)).date()
        last = last or pd.Timestamp(ns[-1], tz="UTC").tz_convert(tz).date()
    sched = schedule(first or last, last or first, config.session.calendar)
    positions = assign_sessions(utc_index(ns), sched) if len(ns) else np.zeros(0, "int64")
    inside = positions >= 0
    if not inside.all():  # regular hours only
        rows = np.flatnonzero(inside) if rows is None else rows[inside]
        ns, positions = ns[inside], positions[inside]
    native = spacing_minutes(ns, positions)
    if not len(ns):
        covered = (
            f"{index[known].min():%Y-%m-%d} to {index[known].max():%Y-%m-%d}" if known.any() else "no dates"
        )
        raise NoDataError(
            f"no data for {symbol} between {first} and {last} in {path} (it covers {covered}, UTC, "
            f"with no regular-hours bars in that range); pick dates inside the file"
        )
    prices = np.empty((len(PRICE_COLUMNS), len(ns)))  # the bars' one float64 block, filled in place
    for row, column in zip(prices, PRICE_COLUMNS, strict=True):
        values = _numbers(frame[column])
        if rows is None:
            row[:] = values
        else:
            np.take(values, rows, out=row)
    used_volume = volume if rows is None else volume[rows]
    _check_values(ns, prices, used_volume, path)
    bars = bars_from_block(utc_index(ns), prices, np.rint(used_volume).astype("int64"))
    bars, notes = _match_interval(bars, native, config, sched, path, symbol)
    warnings += notes
    if notes:  # aggregated: new stamps
        positions = assign_sessions(pd.DatetimeIndex(bars.index), sched)
    warnings += _warmup_note(positions, symbol, path, config, start, sched)
    return bars, path, warnings


def _check_values(ns: np.ndarray, prices: np.ndarray, volume: np.ndarray, path: Path) -> None:
    """NaN or non-numeric prices or volume in the bars used are an error naming count and first time."""
    bad = np.isnan(prices).any(axis=0) | np.isnan(volume)
    if bad.any():
        first = pd.Timestamp(ns[np.argmax(bad)], tz="UTC")
        raise DataError(
            f"--data file {path}: {int(bad.sum())} bars have missing or non-numeric values "
            f"(first at {first:%Y-%m-%d %H:%M} UTC); fill or remove those rows"
        )


def _match_interval(bars, native, config, sched, path, symbol) -> tuple[pd.DataFrame, list[str]]:
    """Aggregate finer bars to the configured interval; coarser bars are an error."""
    want = config.data.interval_minutes
    if native is None or native == want:
        return bars, []
    if native > want or want % native:
        raise DataError(
            f"--data file {path} holds {native}-minute bars, which cannot make {config.data.interval} bars; "
            f"use --interval {native}m"
        )
    return resample_bars(bars, want, sched), [
        f"{symbol}: {native}-minute file bars aggregated to {config.data.interval}"
    ]


def _warmup_note(positions, symbol, path, config, start, sched) -> list[str]:
    """A warning when the file holds fewer sessions before `start` (default: its first session) than
    the configured warm-up or than the settings needing history (`positions`: the bars' sessions in
    `sched`, in time order)."""
    held = (
        positions[np.concatenate(([True], positions[1:] != positions[:-1]))] if len(positions) else positions
    )
    days = sched.index[held[held >= 0]]
    present = int((days < pd.Timestamp(start)).sum()) if start is not None else 0
    needs = history_needs(config)
    longest = max(needs.values(), default=0)
    if start is not None and present < config.data.warmup_sessions:
        head = (
            f"{symbol}: {path.name} holds {present} of the {config.data.warmup_sessions} warm-up sessions "
            f"before {start}"
        )
    elif (start is not None and present < longest) or (start is None and len(days) <= longest):
        head = (
            f"{symbol}: {path.name} holds {present} sessions before {start}"
            if start is not None
            else f"{symbol}: {path.name} holds only {len(days)} sessions"
        )
    else:
        return []
    named = ", ".join(f"{key} {value}" for key, value in needs.items())
    return [
        f"{head}; {named} need that many earlier sessions, so sessions lacking them are skipped "
        f"(reason warmup) or score no rel_volume; give more history or lower those settings"
    ]
