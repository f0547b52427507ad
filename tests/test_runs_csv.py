"""orb.runs.csvfile writes the bytes pandas' to_csv writes (times formatted as the run folder's), by
its own encoder where it covers the frame and by pandas elsewhere."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orb.runs import csvfile
from orb.runs.csvfile import TIME_FORMAT, csv_bytes

TIMES = ("entry_time", "exit_time")


def _pandas(frame: pd.DataFrame) -> bytes:
    """The reference: write_csv's formatting before it had an encoder of its own (times in UTC)."""
    out = frame.assign(
        **{
            c: frame[c].dt.tz_convert("UTC").dt.strftime(TIME_FORMAT)
            for c in TIMES
            if c in frame and isinstance(frame[c].dtype, pd.DatetimeTZDtype)
        }
    )
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _trades(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    entry = pd.Timestamp("2024-03-08 14:45", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 10**6, n), unit="min"
    )
    price = np.round(rng.uniform(1, 900, n), 2)
    price[::7] = np.nan
    return pd.DataFrame(
        {
            "trade_id": [f"SPY-{i:05d}" for i in range(n)],
            "session_date": [d.date() for d in entry],
            "side": pd.Series(rng.choice(["long", "short"], n), dtype="str"),
            "entry_time": entry,
            "exit_time": pd.Series(entry + pd.Timedelta(minutes=37)).where(rng.random(n) > 0.2),
            "entry_price": price,
            "r_multiple": rng.normal(0, 2, n) / 3,  # long reprs
            "shares": rng.integers(1, 10**6, n),
            "t1_filled": rng.random(n) > 0.5,
        }
    )


@pytest.mark.parametrize("n", [0, 1, 2, 50, 1349])
def test_a_trades_table_is_encoded_by_its_own_encoder_as_pandas_writes_it(n):
    frame = _trades(n)
    assert csvfile._encode(frame, TIMES) is not None  # the fast path, not the fallback
    assert csv_bytes(frame, TIMES) == _pandas(frame)


def test_the_cells_of_a_row():
    frame = _trades(3).iloc[:1]
    line = csv_bytes(frame, TIMES).decode().splitlines()[1].split(",")
    assert line[3] == frame["entry_time"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert line[-1] in ("True", "False") and line[-2] == str(frame["shares"].iloc[0])


finite = st.floats(allow_nan=False, allow_infinity=False)
cells = st.one_of(
    finite, st.just(np.nan), st.sampled_from([np.inf, -np.inf, -0.0, 1e16, 1e-5, 123456789.0, 5e-324])
)


@given(
    st.lists(cells, min_size=1, max_size=40),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=40, max_size=40),
)
def test_floats_and_ints_match_pandas(floats, ints):
    frame = pd.DataFrame(
        {"x": np.array(floats, dtype=np.float64), "n": np.array(ints[: len(floats)], dtype=np.int64)}
    )
    assert csvfile._encode(frame, TIMES) is not None
    assert csv_bytes(frame, TIMES) == _pandas(frame)


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=6), st.dates()), min_size=1, max_size=20),
    st.sampled_from(["object", "str"]),
)
def test_text_and_dates_match_pandas_whichever_path_writes_them(values, kind):
    column = (
        pd.Series(values, dtype=object)
        if kind == "object"
        else pd.Series(values, dtype=object)
        .map(lambda v: v if v is None or isinstance(v, str) else v.isoformat())
        .astype("str")
    )
    frame = pd.DataFrame({"a": column, "b": range(len(values))})
    assert csv_bytes(frame, TIMES) == _pandas(frame)  # quotes, newlines and odd types go to pandas


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"only": [1.5, np.nan]}),  # a lone empty field is written as ""
        pd.DataFrame({"a": ["x,y", "z"], "b": [1, 2]}),  # a comma is quoted
        pd.DataFrame({"a": ['say "hi"', "z"], "b": [1, 2]}),
        pd.DataFrame({"a": [1, 2], "b,c": [3, 4]}),  # a header that needs quotes
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1, 2]}),
        pd.DataFrame({"a": [dt.datetime(2024, 1, 2, 3, 4), dt.date(2024, 1, 2)], "b": [1, 2]}),
        pd.DataFrame(
            {"time": [pd.Timestamp("2024-01-02", tz="UTC")], "b": [1]}
        ),  # UTC, but not a time column here
    ],
)
def test_frames_the_encoder_leaves_to_pandas(frame):
    assert csvfile._encode(frame, TIMES) is None
    assert csv_bytes(frame, TIMES) == _pandas(frame)


def test_times_of_another_zone_are_written_in_utc_by_both_paths():
    local = pd.Series(pd.to_datetime(["2024-01-02 09:30", None]).tz_localize("America/New_York"))
    frame = pd.DataFrame({"entry_time": local, "b": [1, 2]})
    assert csvfile._encode(frame, TIMES) is not None
    fallback = frame.assign(c=pd.Categorical(["x", "y"]))
    assert csvfile._encode(fallback, TIMES) is None
    assert b"2024-01-02T14:30:00+00:00,1\n,2\n" in csv_bytes(frame, TIMES)
    assert b"2024-01-02T14:30:00+00:00,1,x\n,2,y\n" in csv_bytes(fallback, TIMES)


def test_non_nanosecond_times_are_formatted_alike():
    stamps = pd.Series(pd.to_datetime(["2024-01-02 14:30:59", None]).as_unit("s").tz_localize("UTC"))
    frame = pd.DataFrame({"entry_time": stamps, "b": [1, 2]})
    assert csvfile._encode(frame, TIMES) is not None
    assert csv_bytes(frame, TIMES) == _pandas(frame)
    assert b"2024-01-02T14:30:59+00:00,1\n,2\n" in csv_bytes(frame, TIMES)


def test_sub_second_and_far_times_match_pandas():
    late = pd.Series(
        pd.to_datetime(["2024-01-02 14:30:59.999999999", "1969-12-31 23:59:59.5"]).tz_localize("UTC")
    )
    frame = pd.DataFrame({"entry_time": late, "b": [1, 2]})
    assert csvfile._encode(frame, TIMES) is not None
    assert csv_bytes(frame, TIMES) == _pandas(frame)
    far = pd.Series(
        pd.DatetimeIndex(np.array(["0999-05-01", "2024-01-02"], dtype="datetime64[s]")).tz_localize("UTC")
    )
    frame = pd.DataFrame({"entry_time": far, "b": [1, 2]})
    assert csvfile._encode(frame, TIMES) is None
    assert csv_bytes(frame, TIMES) == _pandas(frame)
