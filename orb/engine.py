"""EventLoopBacktest: the bar-by-bar ORB confluence engine (strategy.md sections 1-8, 11).

Everything that does not depend on the position (sessions, opening ranges, daily values, trigger
levels, rel_volume and ADX flags) is computed once with numpy from causal data (orb.prepare); the bar
loop (orb.loop) then walks each session in time order and visits only the bars that can act.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from orb.config import Config
from orb.loop import TRADE_ROW, Loop
from orb.loop_rows import BacktestResult
from orb.metrics import MetricInputs
from orb.prepare import Prepared, prepare

__all__ = ["BacktestResult", "EventLoopBacktest", "Prepared", "SessionLoop", "SessionOutcome"]


class EventLoopBacktest:
    """Backtest one symbol: `EventLoopBacktest(config, "SPY").run(bars, start, end)`."""

    def __init__(self, config: Config, symbol: str):
        self.config = config
        self.symbol = symbol

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        bars: pd.DataFrame,
        start: date | None = None,
        end: date | None = None,
        progress: Callable[[int, int], None] | None = None,
        skip_sessions: Mapping[date, str] | None = None,
    ) -> BacktestResult:
        """Backtest `bars` (the bar contract); sessions before `start` only warm up daily values.

        `progress(bars_done, bars_total)` is called every few sessions when given. A session date in
        `skip_sessions` is skipped with that reason (the data layer's `bad_bars`), before any other.
        """
        return self.run_prepared(self.prepare(bars, start, end, skip_sessions), progress)

    def run_prepared(
        self, p: Prepared, progress: Callable[[int, int], None] | None = None, *, lean: bool = False
    ) -> BacktestResult:
        """`run` on bars already prepared (`prepare`, or a `PreparedMemo` shared across configs with the
        same `prepare_key`). `lean`: only the trades, equity and sessions frames (what the metrics read);
        fills, events and bars are left empty."""
        S, ts_ns, first_reported = p.sessions, p.ts_ns, p.first_reported
        loop = Loop(self.config, self.symbol, p)
        n_ses = len(S.starts)
        for s in range(first_reported, n_ses):
            loop.run_session(s)
            if progress is not None and (s % 32 == 31 or s == n_ses - 1):
                progress(int(S.starts[s + 1]) if s + 1 < n_ses else len(ts_ns), len(ts_ns))
        if lean:
            return loop.results(p.bars.iloc[:0], lean=True)
        return loop.results(p.reported_bars())

    def measure(self, p: Prepared) -> MetricInputs:
        """`run_prepared` for the metrics only (sweeps): the columns they read, no frames, no fills or
        events recorded."""
        loop = Loop(self.config, self.symbol, p, record=False)
        for s in range(p.first_reported, len(p.sessions.starts)):
            loop.run_session(s)
        return loop.metric_inputs()

    def prepare(
        self,
        bars: pd.DataFrame,
        start: date | None = None,
        end: date | None = None,
        skip_sessions: Mapping[date, str] | None = None,
    ) -> Prepared:
        """Everything that does not depend on the position, for the sessions up to `end`; a session date
        in `skip_sessions` is skipped with that reason (the data layer's `bad_bars`), before any other."""
        return prepare(self.config, bars, start, end, skip_sessions)

    def session_loop(self, prepared: Prepared) -> SessionLoop:
        """A loop that runs chosen sessions of `prepared` one at a time (portfolio mode, strategy.md 10.6)."""
        return SessionLoop(Loop(self.config, self.symbol, prepared), prepared.bars)


@dataclass(frozen=True)
class SessionOutcome:
    """What one session added: trade rows (TRADE_COLUMNS order) and fill tuples (FILL_COLUMNS order)."""

    trades: list[dict]
    fills: list[tuple]


class SessionLoop:
    """The engine's own session rules (sections 3-6) for sessions chosen by the caller, each entry sized
    with a given equity (strategy.md 10.2, 10.9.5) instead of the symbol's realized equity."""

    def __init__(self, loop: Loop, bars: pd.DataFrame):
        self._loop = loop
        self._bars = bars
        self._position = {day: s for s, day in enumerate(loop.dates)}

    def run_session(self, day: date, sizing_equity: float) -> SessionOutcome:
        loop = self._loop
        n_trades, n_fills = len(loop.trades), len(loop.fills)
        loop.sizing_equity = sizing_equity
        loop.run_session(self._position[day])
        loop.excursions()
        trades = [dict(zip(TRADE_ROW, row, strict=True)) for row in loop.trades[n_trades:]]
        return SessionOutcome(trades, loop.fills[n_fills:])

    def results(self) -> BacktestResult:
        """The frames of every session run so far (equity and cum_r are this symbol's own)."""
        return self._loop.results(self._bars)
