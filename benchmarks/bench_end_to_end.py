"""Whole-process speed and memory of `run_backtest.py` next to backtesting.py, on the same bars.

One Parquet file of about 528,000 one-minute regular-hours bars (5.4 years of one symbol). In one run,
alternated A/B (each case once per round, `--repeat` rounds), each in a fresh process:
- floor: the interpreter, `import numpy, pandas, pyarrow` and reading the file;
- orb, simple config (the ORB of tests/test_parity_backtesting_py.py) and the default config (confluence
  and partials on), every output file written (`--data FILE`);
- backtesting.py running the same simple ORB (benchmarks/peer_backtesting_py.py), when installed.
Prints medians of wall time and peak RSS, the ratios, and the machine load before and after. orb runs
with its caches in the benchmark's temporary folder, warmed by one unmeasured run per config (as every
run after a config's first: see the README on the config cache).

orb's bytecode is compiled once first (`compileall`), as an installed package has it and as numpy,
pandas, pyarrow and backtesting.py have theirs: with PYTHONDONTWRITEBYTECODE set, every process would
otherwise compile orb's sources again (about 0.1-0.15 s). `--no-compile` measures that case.

    python benchmarks/bench_end_to_end.py [--repeat 5] [--no-compile]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import DEFAULT_YAML, ROOT, SIMPLE_YAML, alternate, load, median, synthetic_parquet  # noqa: E402

FLOOR = "floor (python, import numpy+pandas+pyarrow, read the file)"
PEER = "backtesting.py, simple ORB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="leave orb's bytecode uncompiled")
    args = parser.parse_args()
    if not args.no_compile:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "orb")], check=True)
    bytecode = "orb bytecode not compiled" if args.no_compile else "orb bytecode compiled first"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "SPY.parquet"
        n_bars = synthetic_parquet(data)
        (work / "simple.yaml").write_text(SIMPLE_YAML)
        (work / "default.yaml").write_text(DEFAULT_YAML)
        ours = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "--data", str(data), "-q",
                "--output-dir", str(work / "runs")]  # fmt: skip
        floor = "import numpy, pandas, pyarrow, sys; pandas.read_parquet(sys.argv[1])"
        cases = {
            FLOOR: [sys.executable, "-c", floor, str(data)],
            "orb, simple config": [*ours, "--config", str(work / "simple.yaml")],
            "orb, default config": [*ours, "--config", str(work / "default.yaml")],
        }
        os.environ["ORB_CACHE_DIR"] = str(work / "cache")  # orb's caches of this benchmark only
        for name in ("orb, simple config", "orb, default config"):  # warm: validated configs are cached
            subprocess.run(cases[name], cwd=work, check=True, stdout=subprocess.DEVNULL)
        peer = importlib.util.find_spec("backtesting") is not None
        if peer:
            cases[PEER] = [sys.executable, str(ROOT / "benchmarks/peer_backtesting_py.py"), str(data)]
        rounds = f"{args.repeat} alternated rounds"
        print(f"{n_bars:,} one-minute bars in one Parquet file; {rounds}; {bytecode}; {load()}")
        print("  orb's config cache warmed by one unmeasured run per config (a first run validates it)")
        runs = alternate(cases, work, args.repeat)
        after = load()
    wall = {name: median([w for w, _ in r]) for name, r in runs.items()}
    rss = {name: median([m for _, m in r]) for name, r in runs.items()}
    for name in cases:
        walls = ", ".join(f"{w:.2f}" for w, _ in runs[name])
        print(f"  {name:60s} median {wall[name]:6.2f} s wall ({walls}), {rss[name]:5.0f} MiB peak RSS")
    base = wall[FLOOR]
    for name in ("orb, simple config", "orb, default config"):
        line = f"  {name}: x{wall[name] / base:.2f} the floor"
        if peer:
            line += f", backtesting.py takes x{wall[PEER] / wall[name]:.1f} as long"
        print(line)
    if not peer:
        print("  backtesting.py is not installed (pip install backtesting): no peer figure")
    print(f"after: {after}")


if __name__ == "__main__":
    main()
