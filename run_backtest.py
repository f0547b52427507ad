"""Backtest the ORB confluence strategy: `python run_backtest.py --symbols SPY QQQ [options]`.

Exit codes: 0 success, 1 error (bad config, no data, some symbol failed), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

INTERVALS = ("1m", "2m", "5m", "15m", "30m")
VENDOR_SOURCES = (
    "alpaca",
    "massive",
    "databento",
)  # always cached (--cache-dir): downloads are slow or billed
DEFAULT_SESSIONS = {"yahoo": 20, "synthetic": 60, "alpaca": 60, "massive": 60, "databento": 60}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) instead of usage plus message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see --help)\n")
        raise SystemExit(2)


def _date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"malformed date {text!r}: use YYYY-MM-DD, e.g. 2024-01-02"
        ) from None


def _symbol(text: str) -> str:
    from orb.errors import RequestError
    from orb.symbols import normalize_symbol

    try:
        return normalize_symbol(text)
    except RequestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from orb import __version__

    p = _Parser(
        prog="run_backtest.py",
        description="Backtest the Opening Range Breakout confluence strategy on 1-minute US equity bars.",
        epilog="Example: python run_backtest.py --symbols SPY QQQ --synthetic",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--symbols", nargs="+", type=_symbol, metavar="SYM", help="one or more symbols")
    which.add_argument(
        "--symbols-file", type=Path, metavar="FILE", help="symbols, one per line ('#' starts a comment)"
    )
    p.add_argument("--start", type=_date, help="first session date, YYYY-MM-DD (inclusive)")
    p.add_argument("--end", type=_date, help="last session date, YYYY-MM-DD (inclusive)")
    p.add_argument("--config", type=Path, help="YAML deep-merged over defaults.yaml")
    p.add_argument("--cache", action="store_true", help="read and write the Parquet bar cache")
    p.add_argument("--cache-dir", type=Path, default=Path("cache"), help="bar cache folder (default: cache/)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--synthetic", action="store_true", help="deterministic synthetic bars (no network)")
    src.add_argument(
        "--data",
        nargs="+",
        type=_data_arg,
        metavar="[SYM=]PATH",
        help="CSV/Parquet/DBN file, folder of SYMBOL.csv/.parquet, or SYM=PATH pairs (docs: Real data)",
    )
    src.add_argument(
        "--source",
        choices=("yahoo", "alpaca", "massive", "databento"),
        help="market data vendor (default from config data.source: yahoo); keys in README 'Real data'",
    )
    p.add_argument(
        "--tz",
        metavar="ZONE",
        help="timezone of naive --data stamps, e.g. UTC (data.file_timezone; default auto: inferred)",
    )
    p.add_argument(
        "--bar-label",
        choices=("auto", "start", "end"),
        help="whether --data stamps mark the bar start or end (data.file_bar_label; default auto)",
    )
    p.add_argument(
        "--max-cost",
        type=_nonnegative("an amount in USD", "5"),
        metavar="USD",
        help="databento: refuse a download estimated above USD",
    )
    p.add_argument("--interval", choices=INTERVALS, help="bar interval (default from config: 1m)")
    p.add_argument("--validate-or", action="store_true", help="skip sessions whose OR bars are invalid")
    p.add_argument("--report", action="store_true", help="write a self-contained SYM_report.html per symbol")
    p.add_argument(
        "--output-dir", type=Path, default=Path("runs"), help="where run folders go (default: runs/)"
    )
    p.add_argument("--run-name", type=_run_name, metavar="TAG", help="tag appended to the run id")
    p.add_argument("--seed", type=int, help="synthetic seed (overrides data.seed)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        type=_set,
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config key (repeatable; VALUE is YAML), e.g. --set orb.base_minutes=5",
    )
    _research_arguments(p)
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="show DEBUG logs")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    p.add_argument("--version", action="version", version=f"orb {__version__}")
    return p


def _research_arguments(p: argparse.ArgumentParser) -> None:
    """Sweep, walk-forward and Dask flags (docs/research.md)."""
    g = p.add_argument_group("research (docs/research.md)")
    g.add_argument("--sweep", type=Path, metavar="FILE.yaml", help="backtest every sweep-file combination")
    g.add_argument("--rank-by", type=_rank_key, metavar="METRIC", help="ranking metric (total_r)")
    g.add_argument("--workers", type=_positive, metavar="N", help="worker processes (default: all cores)")
    g.add_argument(
        "--walk-forward", action="store_true", help="choose on train windows, trade the next test window"
    )
    g.add_argument("--wf-train", type=_positive, default=40, metavar="N", help="train sessions per fold (40)")
    g.add_argument("--wf-test", type=_positive, default=10, metavar="N", help="test sessions per fold (10)")
    g.add_argument("--wf-anchored", action="store_true", help="train from the first session (not rolling)")
    g.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT", help="run the tasks on this Dask cluster")
    g.add_argument(
        "--monte-carlo", type=_positive, metavar="N", help="bootstrap the trades' R N times (seed: --mc-seed)"
    )
    g.add_argument(
        "--mc-seed",
        type=_seed,
        metavar="N",
        help="Monte Carlo seed (default: data.seed); --seed changes the bars",
    )
    g.add_argument("--mc-by-session", action="store_true", help="resample whole sessions, not trades")
    g.add_argument(
        "--mc-dd",
        type=_nonnegative("a drawdown in R", "10"),
        nargs="+",
        metavar="R",
        help="drawdown thresholds in R (5 10 20)",
    )


def _data_arg(text: str) -> tuple[str | None, Path]:
    """PATH, or SYM=PATH (a symbol paired with a file whatever its name)."""
    head, sep, tail = text.partition("=")
    if sep and head and "/" not in head and "\\" not in head:
        return _symbol(head), Path(tail)
    return None, Path(text)


def _nonnegative(what: str, example: str) -> Callable[[str], float]:
    """An argparse type for a finite amount >= 0, named `what` in its message (e.g. "an amount in USD")."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what} >= 0, e.g. {example}, got {text!r}")
        return value

    return parse


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    if not text.isdigit() or len(text) > 19:
        raise argparse.ArgumentTypeError(f"expected a seed: a whole number >= 0, got {text[:30]!r}")
    return int(text)


def _rank_key(text: str) -> str:
    from orb.errors import ConfigError
    from orb.research.sweep import check_rank_by

    try:
        return check_rank_by(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--rank-by {text!r} ")) from None


def _check_research(p: argparse.ArgumentParser, args: argparse.Namespace, portfolio: bool = False) -> None:
    """Research flags that make no sense without --sweep (or with --report), Monte Carlo flags without
    --monte-carlo or with a plain sweep. A portfolio run (`portfolio.enabled`) takes --workers and
    --dask-scheduler for its per-symbol stages."""
    if args.monte_carlo is None and (args.mc_by_session or args.mc_dd or args.mc_seed is not None):
        flag = "mc-by-session" if args.mc_by_session else "mc-dd" if args.mc_dd else "mc-seed"
        p.error(f"--{flag} needs --monte-carlo N")
    if args.monte_carlo is not None and args.sweep is not None and not args.walk_forward:
        p.error("--monte-carlo applies to a backtest or a --walk-forward, not to a plain --sweep")
    if args.sweep is None:
        flags = ("walk_forward", "wf_anchored") + (() if portfolio else ("workers", "dask_scheduler"))
        given = [f for f in flags if getattr(args, f)]
        if given:
            p.error(f"--{given[0].replace('_', '-')} needs --sweep FILE.yaml (the parameter grid)")
    elif args.report:
        p.error("--report applies to single backtests, not to --sweep")


def _set(text: str) -> tuple[str, object]:
    from orb.config import parse_override
    from orb.errors import ConfigError

    try:
        return parse_override(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise argparse.ArgumentTypeError(f"run name {text!r}: use letters, digits, '_', '.', '-' (max 64)")
    return text


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """Config keys set by flags (each is logged)."""
    out: dict[str, object] = {}
    if args.interval:
        out["data.interval"] = args.interval
    if args.validate_or:
        out["orb.validate"] = True
    if args.seed is not None:
        out["data.seed"] = args.seed
    if args.tz:
        out["data.file_timezone"] = args.tz
    if args.bar_label:
        out["data.file_bar_label"] = args.bar_label
    if args.max_cost is not None:
        out["data.databento.max_cost"] = args.max_cost
    for key, value in args.sets:  # --set, in order: a later one wins
        out.pop(key, None)
        out[key] = value
    return out


def _date_range(args, source: str, calendar: str, interval: str) -> tuple[date | None, date | None]:
    """--start/--end, or the defaults of interfaces.md: recent sessions ending yesterday."""
    from orb.errors import RequestError
    from orb.sessions import recent_sessions, schedule

    start, end = args.start, args.end
    if source == "file":  # omitted dates: the file's own first/last session
        if start is not None and end is not None and end < start:
            raise RequestError(f"--end {end} is before --start {start}; swap them")
        return start, end
    if start is None or end is None:
        count = DEFAULT_SESSIONS[source]
        last = end or date.today() - timedelta(days=1)
        first, last_ts = recent_sessions(last, count, calendar)
        start = start or first.date()
        end = end or last_ts.date()
    if end < start:
        raise RequestError(f"--end {end} is before --start {start}; swap them")
    if schedule(start, end, calendar).empty:
        raise RequestError(
            f"no trading session between {start} and {end} (weekend or holiday); widen the range"
        )
    if source == "yahoo" and not args.cache:  # with --cache the data layer checks after a cache miss
        from orb.data.yahoo import check_yahoo_request

        check_yahoo_request(interval, start, end, date.today())  # before any download
    return start, end


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the command line `argv`; `exiting`: the process ends after it (`cli`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = _early_config(args)
    _check_research(parser, args, portfolio=cfg is not None and cfg.portfolio.enabled)
    from loguru import logger

    from orb import console
    from orb.errors import OrbError

    console.setup_logging("DEBUG" if args.verbose else "WARNING" if args.quiet else "INFO")
    try:
        return _main(args, cfg, exiting)
    except OrbError as exc:
        logger.opt(exception=True).debug("run failed")
        console.error_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        logger.debug("interrupted by the user")
        console.error_line("interrupted: no run folder was written")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, traceback to the log
        logger.opt(exception=True).debug("internal error")
        console.error_line(f"internal error: {type(exc).__name__}: {exc} (details in backtest_run.log)")
        return 1


def _early_config(args: argparse.Namespace):
    """The run's config, read before logging is set up (None when broken: the run reports it later)."""
    from orb.config import load_config
    from orb.errors import OrbError

    try:
        return load_config(args.config, _overrides(args))
    except OrbError:
        return None


def _header_rows(args, cfg, source: str, start, end, symbols: tuple[str, ...]) -> dict[str, str]:
    files = " ".join(f"{s}={p}" if s else str(p) for s, p in args.data or ())
    data = {"file": f"file {files}", "synthetic": f"synthetic (seed {cfg.data.seed})"}.get(
        source, source.capitalize()
    )
    strategy = [f"entry {cfg.entry.mode}", f"stop {cfg.trade.stop_mode}", f"OR {cfg.orb.base_minutes} min"]
    strategy += [
        name
        for name, on in (
            ("adaptive OR", cfg.orb.adaptive),
            ("confluence", cfg.confluence.enabled),
            ("partials", cfg.trade.partials),
        )
        if on
    ]
    return {
        "Symbols": " ".join(symbols),
        "Sessions": f"{start or 'first in file'} .. {end or 'last in file'}",
        "Data": data + (f", bar cache in {args.cache_dir}{os.sep}" if args.cache else ""),
        "Interval": cfg.data.interval,
        "Strategy": ", ".join(strategy),
        "Config": f"{args.config or 'defaults.yaml'} (sha256 {cfg.sha256()[:12]})",
        "Output": str(args.output_dir),
    }


def _data_paths(items: list[tuple[str | None, Path]], symbols: tuple[str, ...]):
    """--data as one path for every symbol, or {SYM: PATH}; RequestError for a file that cannot serve
    several symbols (no `symbol` column) and for symbols without a file."""
    from orb.data.files import check_shared_file
    from orb.errors import RequestError

    pairs = {sym: path for sym, path in items if sym is not None}
    plain = [path for sym, path in items if sym is None]
    if plain and (pairs or len(plain) > 1):
        raise RequestError(
            "--data takes one PATH (file or folder) or SYM=PATH pairs, not a mix; pair each file"
        )
    if not pairs:
        check_shared_file(plain[0], symbols)
        return plain[0]
    unpaired = [s for s in symbols if s not in pairs]
    if unpaired:
        raise RequestError(f"--data has no file for {', '.join(unpaired)}; add {unpaired[0]}=PATH")
    return pairs


def _main(args: argparse.Namespace, cfg=None, exiting: bool = False) -> int:
    from loguru import logger

    from orb import console, pipeline
    from orb.config import load_config

    overrides = _overrides(args)
    cfg = cfg if cfg is not None else load_config(args.config, overrides)
    for key, value in overrides.items():
        logger.info(f"command line overrides config {key} = {value}")
    if exiting:  # what the imports built lives until the exit: keep the collector's passes off it
        gc.freeze()
        gc.enable()  # off during start-up (`cli`)
    source = "synthetic" if args.synthetic else "file" if args.data else args.source or cfg.data.source
    start, end = _date_range(args, source, cfg.session.calendar, cfg.data.interval)
    if args.symbols_file is not None:
        from orb.data.symbols_file import read_symbols_file

        symbols = read_symbols_file(args.symbols_file)
    else:
        symbols = tuple(dict.fromkeys(args.symbols))
    data_path = _data_paths(args.data, symbols) if args.data else None
    request = pipeline.RunRequest(
        symbols=symbols,
        start=start,
        end=end,
        source=source,
        output_dir=args.output_dir,
        data_path=data_path,
        cache_dir=args.cache_dir if args.cache or source in VENDOR_SOURCES else None,
        run_name=args.run_name,
        report=args.report,
        quiet=args.quiet,
        command=" ".join(["python", Path(sys.argv[0]).name, *sys.argv[1:]]),
    )
    if cfg.portfolio.enabled and args.sweep is None:
        return _portfolio(args, request, cfg, _header_rows(args, cfg, source, start, end, symbols))
    monte_carlo = _monte_carlo(args)
    if args.sweep is not None:
        if cfg.portfolio.enabled and args.walk_forward:
            from orb.errors import RequestError

            raise RequestError(
                "--walk-forward is not available for portfolio runs yet; run a plain --sweep, "
                "or set portfolio.enabled: false"
            )
        header = _header_rows(args, cfg, source, start, end, symbols)
        return _research(args, request, cfg, header, monte_carlo)
    if not args.quiet:
        console.header(_header_rows(args, cfg, source, start, end, symbols))
    analyse = None
    if monte_carlo is not None:  # bootstrap all_trades into the run folder (orb.research)
        from orb.research.runner import bootstrap_hook

        analyse = bootstrap_hook(monte_carlo, cfg.data.seed)
    outcome = pipeline.run(request, cfg, analyse)
    if not args.quiet:
        console.symbol_table(outcome.metrics["per_symbol"])
        console.aggregate_table(outcome.metrics["aggregate"])
        console.skipped_table(outcome.skipped)
        if outcome.montecarlo is not None:
            console.print_monte_carlo(outcome.montecarlo)
        console.completion(outcome.run_dir, outcome.failures, outcome.wall_seconds)
    else:
        for message in outcome.failures.values():
            console.error_line(message)
        console.run_path(outcome.run_dir)
    return 1 if outcome.failures else 0


def _portfolio(args: argparse.Namespace, request, cfg, header: dict[str, str]) -> int:
    """portfolio.enabled: one account over the daily universe (orb.portfolio, strategy.md 10)."""
    from orb import console, portfolio

    analyse = None
    monte_carlo = _monte_carlo(args)
    if monte_carlo is not None:  # the account's sessions are resampled (orb.research)
        from orb.research.runner import portfolio_bootstrap_hook

        analyse = portfolio_bootstrap_hook(monte_carlo, cfg.data.seed)
    if not args.quiet:
        if len(request.symbols) > 12:
            header["Symbols"] = f"{len(request.symbols)} symbols ({' '.join(request.symbols[:10])} ...)"
        p = cfg.portfolio
        header["Portfolio"] = f"top {p.max_positions} by relative volume, one account" + (
            f", benchmark {p.benchmark}" if p.benchmark else ""
        )
        console.header(header)
    outcome = portfolio.run(
        request, cfg, workers=args.workers, scheduler=args.dask_scheduler, analyse=analyse
    )
    if not args.quiet:
        from orb.portfolio.summary import funnel_table, summary_table

        summary_table(outcome.metrics["aggregate"], cfg.portfolio.benchmark)
        funnel_table(outcome.funnel)
        if outcome.montecarlo is not None:
            console.print_monte_carlo(outcome.montecarlo)
        console.completion(outcome.run_dir, outcome.failures, outcome.wall_seconds)
    else:
        for message in outcome.failures.values():
            console.error_line(message)
        console.run_path(outcome.run_dir)
    return 1 if outcome.failures else 0


def _monte_carlo(args: argparse.Namespace):
    """The --monte-carlo request, or None."""
    if args.monte_carlo is None:
        return None
    from orb.research.runner import MonteCarloRequest

    return MonteCarloRequest(
        paths=args.monte_carlo,
        by_session=args.mc_by_session,
        dd_thresholds=tuple(args.mc_dd or MonteCarloRequest.dd_thresholds),
        seed=args.mc_seed,
    )


def _research(args: argparse.Namespace, request, cfg, header: dict[str, str], monte_carlo) -> int:
    """--sweep / --walk-forward: the research runner (orb.research.runner)."""
    from orb import console
    from orb.research.runner import ResearchRequest, cli

    research = ResearchRequest(
        sweep_path=args.sweep,
        rank_by=args.rank_by or "total_r",  # no default in argparse: it would import research to check it
        workers=args.workers or os.cpu_count() or 1,
        scheduler=args.dask_scheduler,
        walk_forward=args.walk_forward,
        wf_train=args.wf_train,
        wf_test=args.wf_test,
        wf_anchored=args.wf_anchored,
        monte_carlo=monte_carlo,
    )
    if not args.quiet:
        backend = f"Dask {research.scheduler}" if research.scheduler else f"{research.workers} process(es)"
        mode = "walk-forward" if research.walk_forward else "sweep"
        if research.walk_forward:
            anchor = "anchored" if research.wf_anchored else "rolling"
            mode += f" ({anchor}, {research.wf_train} train / {research.wf_test} test sessions)"
        header["Research"] = f"{mode} of {args.sweep}, ranked by {research.rank_by}, on {backend}"
        console.header(header)
    return cli(request, cfg, research)


def cli() -> int:
    """`main` with Ctrl-C at any moment of start-up (imports, argument parsing) as one line, exit 130;
    then the process ends at once (`_end_process`). The cyclic garbage collector is off until the run
    starts: start-up (imports, parsing, the config) builds objects that live to the end; its ~220
    collections took ~45 ms to free about a thousand small objects."""
    gc.disable()
    try:
        code = main(exiting=True)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted during start-up: nothing was written\n")
        code = 130
    return _end_process(code)


def _end_process(code: int) -> int:
    """End the process without the interpreter's teardown (freeing every module and object: ~40 ms
    after a large run) once nothing else is running: the log sinks are closed and the streams flushed
    first, and orb registers no exit handler. With another thread or a child process alive, return
    `code` for a normal exit instead (their exit handlers join them)."""
    gc.freeze()  # a normal exit's collections would walk every object alive (~0.2 s after a large run)
    if threading.active_count() > 1 or ("multiprocessing" in sys.modules and _children()):
        return code
    if "loguru" in sys.modules:
        from loguru import logger

        logger.remove()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            code = code or 1
    os._exit(code)


def _children() -> list:
    import multiprocessing

    return multiprocessing.active_children()


if __name__ == "__main__":
    sys.exit(cli())
