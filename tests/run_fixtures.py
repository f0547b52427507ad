"""Hand-built run folders per run-format.md, for damaged and edge cases the real runner never writes.

`build_run` writes every file of the format with small deterministic content (including NaN floats
and null metrics), hashes them into manifest.json, renames the folder into place and updates
runs/latest, like the runner does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from orb.config import FACTOR_NAMES, load_config
from orb.schema import METRIC_KEYS
from orb.sessions import schedule

CAPITAL = 100_000.0
REPO = Path(__file__).resolve().parent.parent


def runner_run(
    output_dir: Path,
    symbols: tuple[str, ...] = ("SPY", "QQQ"),
    start: str = "2024-01-02",
    end: str = "2024-03-29",
) -> Path:
    """The run folder the real runner writes for these synthetic arguments (run once per output_dir)."""
    latest = output_dir / "latest"
    if not latest.is_file():
        output_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(REPO / "run_backtest.py"), "--symbols", *symbols, "--synthetic"]
        command += ["--start", start, "--end", end, "--output-dir", str(output_dir), "--quiet"]
        done = subprocess.run(command, cwd=output_dir.parent, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"run_backtest.py failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    return output_dir / latest.read_text(encoding="utf-8").strip()


def run_backtest(output_dir: Path, *args: str) -> Path:
    """Run the real runner (synthetic data) into `output_dir`; return the new run folder."""
    command = [sys.executable, str(REPO / "run_backtest.py"), "--synthetic", "--output-dir", str(output_dir)]
    done = subprocess.run([*command, "-q", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"run_backtest.py failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return output_dir / (output_dir / "latest").read_text(encoding="utf-8").strip()


def strict_json(text: str):
    """Parse a response body, failing on NaN/Infinity (not JSON)."""

    def refuse(token):
        raise AssertionError(f"non-JSON number {token} in a response")

    return json.loads(text, parse_constant=refuse)


def api_get(client, url, status=200, **kwargs):
    """GET through a TestClient, check the status, return the strict JSON body."""
    response = client.get(url, **kwargs)
    assert response.status_code == status, response.text
    return strict_json(response.text)


def rehash(run: Path) -> None:
    """Record the current SHA-256 of every file in the manifest, as a writer that wrote them would
    (tests that put off-format content into a run, rather than damage a file after the run)."""
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"] = {name: _sha256(run / name) for name in manifest["files"] if (run / name).is_file()}
    (run / "manifest.json").write_text(json.dumps(manifest))


def _trades(symbol: str, sched: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for day, open_utc in zip(sched.index, sched["open"], strict=True):
        for _ in range(int(rng.integers(0, 3))):
            side = "long" if rng.random() < 0.5 else "short"
            entry_time = open_utc + pd.Timedelta(minutes=int(rng.integers(15, 200)))
            entry = 100.0 + rng.normal(0, 5)
            r_ps = abs(rng.normal(0.5, 0.1)) + 0.05
            shares = int(rng.integers(10, 500))
            r_mult = float(rng.normal(0.2, 1.2))
            sign = 1 if side == "long" else -1
            rows.append(
                {
                    "trade_id": f"{symbol}-{len(rows) + 1:05d}",
                    "symbol": symbol,
                    "session_date": day.date(),
                    "side": side,
                    "entry_time": entry_time,
                    "entry_price": entry,
                    "stop_price": entry - sign * r_ps,
                    "r_per_share": r_ps,
                    "shares": shares,
                    "t1_price": entry + sign * r_ps,
                    "t2_price": entry + sign * 1.5 * r_ps if rng.random() < 0.7 else np.nan,
                    "target_price": entry + sign * 3 * r_ps,
                    "exit_time": entry_time + pd.Timedelta(minutes=int(rng.integers(1, 120))),
                    "exit_price": entry + sign * r_mult * r_ps,
                    "exit_reason": str(rng.choice(["stop", "target", "breakeven", "eod"])),
                    "t1_filled": bool(r_mult > 1),
                    "t2_filled": bool(r_mult > 1.5),
                    "gross_pnl": r_mult * r_ps * shares + 1.0,
                    "commission": 1.0,
                    "net_pnl": r_mult * r_ps * shares,
                    "initial_risk": r_ps * shares,
                    "r_multiple": r_mult,
                    "gross_r": r_mult + 1.0 / (r_ps * shares),
                    "mfe_r": abs(r_mult) + 0.3,
                    "mae_r": -0.4,
                    "holding_minutes": float(rng.integers(1, 120)),
                    "or_high": entry + 0.2,
                    "or_low": entry - 0.8,
                    "or_minutes": 15,
                    "score": float(rng.integers(2, 5)) if rng.random() < 0.9 else np.nan,
                    **{f"factor_{name}": int(rng.integers(0, 2)) for name in FACTOR_NAMES},
                }
            )
    return pd.DataFrame(rows)


def _equity(trades: pd.DataFrame, sched: pd.DataFrame) -> pd.DataFrame:
    points = [
        (t, r, pnl)
        for t, r, pnl in zip(trades["exit_time"], trades["r_multiple"], trades["net_pnl"], strict=True)
    ]
    points += [(close, 0.0, 0.0) for close in sched["close"]]
    points.sort(key=lambda p: p[0])
    frame = pd.DataFrame(points, columns=["timestamp", "r", "pnl"])
    equity = CAPITAL + frame["pnl"].cumsum()
    cum_r = frame["r"].cumsum()
    return pd.DataFrame(
        {
            "timestamp": frame["timestamp"],
            "equity": equity,
            "cum_r": cum_r,
            "drawdown_pct": (equity / equity.cummax() - 1) * 100,
            "drawdown_r": cum_r - cum_r.cummax(),
        }
    )


def _combined(equities: dict[str, pd.DataFrame]) -> pd.DataFrame:
    stamps = sorted(set().union(*(set(e["timestamp"]) for e in equities.values())))
    index = pd.DatetimeIndex(stamps)
    total = pd.Series(0.0, index=index)
    cum_r = pd.Series(0.0, index=index)
    for eq in equities.values():
        one = eq.groupby("timestamp").last()
        total = total + one["equity"].reindex(index).ffill().fillna(CAPITAL)
        cum_r = cum_r + one["cum_r"].reindex(index).ffill().fillna(0.0)
    return pd.DataFrame(
        {
            "timestamp": index,
            "equity": total.to_numpy(),
            "cum_r": cum_r.to_numpy(),
            "drawdown_pct": ((total / total.cummax() - 1) * 100).to_numpy(),
            "drawdown_r": (cum_r - cum_r.cummax()).to_numpy(),
        }
    )


def _sessions(trades: pd.DataFrame, sched: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    counts = trades.groupby("session_date").size() if len(trades) else pd.Series(dtype=int)
    day_r = trades.groupby("session_date")["r_multiple"].sum() if len(trades) else pd.Series(dtype=float)
    rows = []
    for i, day in enumerate(sched.index.date):
        n = int(counts.get(day, 0))
        skipped = i < 2
        rows.append(
            {
                "session_date": day,
                "or_minutes": 15,
                "or_high": 101.0,
                "or_low": 100.0,
                "or_width": 1.0,
                "atr": np.nan if skipped else 2.0 + rng.random(),
                "or_width_atr": np.nan if skipped else 0.4,
                "status": "skipped" if skipped else ("traded" if n else "no_signal"),
                "skip_reason": "warmup_atr" if skipped else None,
                "trades": n,
                "day_r": float(day_r.get(day, 0.0)),
            }
        )
    return pd.DataFrame(rows)


def _bars(sched: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    stamps = pd.DatetimeIndex(
        np.concatenate(
            [
                pd.date_range(o, c, freq="1min", inclusive="left")
                for o, c in sched[["open", "close"]].to_numpy()
            ]
        ),
        name="timestamp",
    ).tz_convert("UTC")
    close = 100 + np.cumsum(rng.normal(0, 0.05, len(stamps)))
    return pd.DataFrame(
        {
            "open": close + 0.01,
            "high": close + 0.05,
            "low": close - 0.05,
            "close": close,
            "volume": rng.integers(100, 10_000, len(stamps)).astype(np.int64),
        },
        index=stamps,
    )


def _metrics(trades: pd.DataFrame, sessions: pd.DataFrame, equity: pd.DataFrame) -> dict:
    r = trades["r_multiple"] if len(trades) else pd.Series(dtype=float)
    values: dict = dict.fromkeys(METRIC_KEYS)
    values.update(
        total_trades=len(r),
        winning_trades=int((r > 0).sum()),
        losing_trades=int((r <= 0).sum()),
        win_rate=float((r > 0).mean()) if len(r) else None,
        total_r=float(r.sum()),
        avg_r=float(r.mean()) if len(r) else None,
        final_equity=float(equity["equity"].iloc[-1]),
        sessions=len(sessions),
        sessions_skipped=int((sessions["status"] == "skipped").sum()),
        sessions_traded=int((sessions["status"] == "traded").sum()),
        profit_factor=None,
        exit_reasons={k: int(v) for k, v in trades["exit_reason"].value_counts().items()} if len(r) else {},
    )
    return values


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_run(
    runs_dir: Path,
    run_id: str = "backtest_20240301_120000",
    symbols: tuple[str, ...] = ("SPY", "QQQ"),
    start: str = "2024-01-02",
    end: str = "2024-01-31",
    created: datetime | None = None,
    seed: int = 7,
    session_date_as_timestamp: bool = False,
    update_latest: bool = True,
) -> Path:
    """Write a complete run folder `runs_dir/run_id` (via a hidden temp folder) and return it."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp_{run_id}"
    tmp.mkdir()
    sched = schedule(start, end)
    config = load_config()
    equities, all_trades, per_symbol = {}, [], {}
    for i, sym in enumerate(symbols):
        rng = np.random.default_rng(seed * 100 + i)
        trades = _trades(sym, sched, rng)
        equity = _equity(trades, sched)
        sessions = _sessions(trades, sched, rng)
        if session_date_as_timestamp:
            trades = trades.assign(session_date=pd.to_datetime(trades["session_date"]))
            sessions = sessions.assign(session_date=pd.to_datetime(sessions["session_date"]))
        legs = [
            trades[["trade_id", "entry_time", "entry_price", "shares"]]
            .set_axis(["trade_id", "time", "price", "shares"], axis=1)
            .assign(kind="entry"),
            trades[["trade_id", "exit_time", "exit_price", "shares", "exit_reason"]].set_axis(
                ["trade_id", "time", "price", "shares", "kind"], axis=1
            ),
        ]
        fills = (
            pd.concat(legs, ignore_index=True)
            .sort_values(["time", "trade_id"], kind="stable", ignore_index=True)
            .assign(symbol=sym, commission=0.5)[
                ["trade_id", "symbol", "time", "kind", "price", "shares", "commission"]
            ]
        )
        events = pd.DataFrame(
            {
                "time": sched["open"].iloc[:3].to_numpy() + pd.Timedelta(minutes=20),
                "symbol": sym,
                "session_date": sched.index.date[:3],
                "side": ["long", "short", "long"],
                "reason": ["confluence", "cutoff", "signal_cap"],
                "detail": ["score 1 < 2", "after 15:00", "2 entries taken"],
            }
        )
        trades.to_parquet(tmp / f"{sym}_trades.parquet", index=False)
        fills.to_parquet(tmp / f"{sym}_fills.parquet", index=False)
        equity.to_parquet(tmp / f"{sym}_equity.parquet", index=False)
        sessions.to_parquet(tmp / f"{sym}_sessions.parquet", index=False)
        events.to_parquet(tmp / f"{sym}_events.parquet", index=False)
        _bars(sched, rng).to_parquet(tmp / f"{sym}_bars.parquet")
        per_symbol[sym] = _metrics(trades, sessions, equity)
        (tmp / f"{sym}_metrics.json").write_text(json.dumps(per_symbol[sym], indent=2))
        equities[sym] = equity
        all_trades.append(trades)
    combined_trades = pd.concat(all_trades, ignore_index=True).sort_values(
        ["entry_time", "symbol"], kind="stable", ignore_index=True
    )
    combined_trades.to_parquet(tmp / "all_trades.parquet", index=False)
    combined_trades.to_csv(tmp / "all_trades.csv", index=False)
    combined = _combined(equities)
    combined.to_parquet(tmp / "combined_equity.parquet", index=False)
    aggregate = _metrics(
        combined_trades,
        pd.concat([_sessions(t, sched, np.random.default_rng(0)) for t in all_trades]),
        combined,
    )
    aggregate.update(symbols=len(symbols), avg_r_per_trade=aggregate["avg_r"])
    (tmp / "metrics.json").write_text(
        json.dumps({"aggregate": aggregate, "per_symbol": per_symbol}, indent=2)
    )
    (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    (tmp / "run.log").write_text("DEBUG fixture run\n")
    files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
    manifest = {
        "schema_version": 1,
        "run_id": run_id,
        "created": (created or datetime(2024, 3, 1, 12, 0, tzinfo=UTC)).isoformat(),
        "command": "run_backtest.py --symbols " + " ".join(symbols) + " --synthetic",
        "symbols": list(symbols),
        "start": start,
        "end": end,
        "interval": "1m",
        "sources": dict.fromkeys(symbols, "synthetic"),
        "data_sha256": {s: hashlib.sha256(s.encode()).hexdigest() for s in symbols},
        "config_sha256": config.sha256(),
        "package_version": "0.1.0",
        "git_commit": None,
        "python": "3.11",
        "libraries": {"pandas": pd.__version__},
        "seed": seed,
        "wall_time_seconds": 0.5,
        "files": files,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    final = runs_dir / run_id
    tmp.rename(final)
    if update_latest:
        (runs_dir / "latest").write_text(run_id + "\n")
    return final
