"""Regenerate the golden regression files: `python scripts/regenerate_golden.py [CASE ...]`.

Runs every case of tests/golden/cases.py (or only the named ones) on the real SPY 2011 bars of
tests/data/ and rewrites tests/golden/<case>/{trades.csv,metrics.json,config.json}. Run it only when a
change of results is intended, then review `git diff tests/golden` and commit it with the change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.golden.cases import CASES, GOLDEN, spy_bars, write_case  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cases", nargs="*", metavar="CASE", help=f"cases to rewrite (default: all of {', '.join(CASES)})"
    )
    names = parser.parse_args(argv).cases or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(
            f"error: unknown golden case(s) {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr
        )
        return 1
    bars = spy_bars()
    for name in names:
        count, total_r = write_case(name, bars)
        print(f"{name:28s} {count:4d} trades  total R {total_r:+.4f}  -> {(GOLDEN / name).relative_to(REPO)}")
    print("review with `git diff tests/golden` and commit the files with the change that moved them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
