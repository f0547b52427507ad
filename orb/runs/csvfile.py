"""The run folder's CSV files: the bytes `DataFrame.to_csv(index=False, lineterminator="\\n")` writes,
times as ISO-8601 UTC with offset, in about half its time.

pandas formats every cell through the `csv` module, row by row (46-54 ms for the 1,349 x 35 trades of
a 5-year run, times formatted first; 18-30 ms here): each column is turned into strings at once, as
pandas turns it: floats with `astype(str)` (the shortest repr), ints and bools with `str`, dates with
`str`, missing values as empty fields. A frame this encoder does not cover exactly (a field that
would need quoting, a dtype other than float, int, bool, str, date or a tz-aware time column, a time
outside the years 1000-9999, a single column) is left to pandas, so the bytes never depend on which
path wrote them; tests/test_runs_csv.py compares both on generated frames.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S+00:00"
_NEEDS_QUOTES = (",", '"', "\n", "\r")


def csv_bytes(frame: pd.DataFrame, time_columns: tuple[str, ...]) -> bytes:
    """The CSV of `frame`; its tz-aware `time_columns` are written in UTC as `TIME_FORMAT`."""
    fast = _encode(frame, time_columns)
    if fast is not None:
        return fast.encode("utf-8")
    out = frame.assign(
        **{
            col: frame[col].dt.tz_convert("UTC").dt.strftime(TIME_FORMAT)
            for col in time_columns
            if col in frame and isinstance(frame[col].dtype, pd.DatetimeTZDtype)
        }
    )
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _encode(frame: pd.DataFrame, time_columns: tuple[str, ...]) -> str | None:
    names = frame.columns.tolist()
    if len(names) < 2 or not all(type(c) is str for c in names) or frame.columns.has_duplicates:
        return None  # a lone field is quoted when empty; other headers are pandas' business
    if not _plain(names):
        return None
    cells = []
    for name in names:
        column = _column(frame[name], name in time_columns)
        if column is None:
            return None
        cells.append(column)
    rows = map(",".join, zip(*cells, strict=True))
    return ",".join(names) + "\n" + "".join(f"{row}\n" for row in rows)


def _column(series: pd.Series, is_time: bool) -> list[str] | None:
    """The cells of one column as pandas writes them, or None when this module does not cover it."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        if not is_time:
            return None
        values = series.dt.tz_convert(None).to_numpy()  # UTC wall times, any unit
        missing = np.isnat(values)
        years = values[~missing].astype("datetime64[Y]").astype(np.int64) + 1970
        if years.size and (years.min() < 1000 or years.max() > 9999):
            return None  # strftime writes such years with another width
        text = np.char.add(np.datetime_as_string(values, unit="s"), "+00:00")
        return np.where(missing, "", text).tolist()
    if isinstance(dtype, np.dtype):
        values = series.to_numpy()
        if dtype.kind == "f":
            return np.where(np.isnan(values), "", values.astype(str)).tolist()
        if dtype.kind in "iu":
            return values.astype(str).tolist()
        if dtype.kind == "b":
            return np.where(values, "True", "False").tolist()
        if dtype.kind == "O":
            return _objects(values)
        return None
    if isinstance(dtype, pd.StringDtype):
        return _objects(series.to_numpy(dtype=object, na_value=None))
    return None


def _objects(values: np.ndarray) -> list[str] | None:
    """Cells of str, date (not datetime) and missing values; None for anything else."""
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v):
            out.append("")
        elif type(v) is str:
            out.append(v)
        elif type(v) is dt.date:
            out.append(v.isoformat())
        else:
            return None
    return out if _plain(out) else None


def _plain(texts: list[str]) -> bool:
    """No text that the csv module would quote (QUOTE_MINIMAL, delimiter ",", lineterminator "\\n")."""
    joined = "".join(texts)
    return not any(ch in joined for ch in _NEEDS_QUOTES)
