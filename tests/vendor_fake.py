"""Local HTTP(S) servers on 127.0.0.1 answering like Alpaca, Massive and Databento (VENDORS.md shapes).

Each fake serves bars of any range from `market_bars` (synthetic regular hours plus one-minute
extended-hours bars), pages like the vendor, checks the key, and can be told to answer the next
requests with a canned error (`fail_next`). The vendors' real clients talk to them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from orb.data.bars import make_bars
from orb.data.synthetic import generate_bars
from orb.sessions import schedule

NY = "America/New_York"


def market_bars(symbol: str, first: date, last: date, extended: bool = True) -> pd.DataFrame:
    """All-hours bars (UTC bar starts) of the sessions first..last: synthetic regular hours, and flat
    low-volume bars 04:00-09:29 and 16:00-19:59 local when `extended`."""
    rth = generate_bars(symbol, first, last, 1, 42, "XNYS")
    if not extended or rth.empty:
        return rth
    parts = [rth]
    sched = schedule(first, last)
    for day, row in sched.iterrows():
        midnight = pd.Timestamp(day.date(), tz=NY).tz_convert("UTC")
        pre = pd.date_range(midnight + pd.Timedelta(hours=4), row["open"], freq="1min", inclusive="left")
        post = pd.date_range(row["close"], midnight + pd.Timedelta(hours=20), freq="1min", inclusive="left")
        session = rth[(rth.index >= row["open"]) & (rth.index < row["close"])]
        if session.empty:
            continue
        o, c = session["open"].iloc[0], session["close"].iloc[-1]
        for stamps, price in ((pre, o), (post, c)):
            n = len(stamps)
            parts.append(
                make_bars(
                    stamps.tz_convert("UTC"),
                    np.full(n, price),
                    np.full(n, price * 1.0005),
                    np.full(n, price * 0.9995),
                    np.full(n, price),
                    np.full(n, 100),
                )
            )
    return pd.concat(parts).sort_index()


class FakeServer:
    """A threaded HTTP server; `handler(method, path, query, headers, body) -> (status, headers, body)`."""

    def __init__(self, handler, cert: tuple[Path, Path] | None = None):
        self.handler = handler
        self.seen: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if self.command == "POST" and body:
                    query |= {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                with me.lock:
                    me.seen.append((self.command, url.path, query))
                status, headers, payload = me.handler(self.command, url.path, query, self.headers, body)
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if cert is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests(self, path_part: str = "") -> list[tuple[str, str, dict]]:
        return [r for r in self.seen if path_part in r[1]]


class VendorFake:
    """Shared state: known symbols, the key, canned failures for the next requests, a price factor."""

    def __init__(self, key: str = "KEY", symbols=("SPY", "QQQ", "IWM"), history_start=date(2016, 1, 4)):
        self.key = key
        self.symbols = set(symbols)
        self.history_start = history_start
        self.failures: list[tuple[int, dict, object]] = []
        self.factor = 1.0
        self.bars_cache: dict[tuple[str, date, date], pd.DataFrame] = {}

    def fail_next(self, status: int, body, headers: dict | None = None, times: int = 1) -> None:
        self.failures += [(status, headers or {}, body)] * times

    def pop_failure(self):
        return self.failures.pop(0) if self.failures else None

    def bars(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Bars with start <= t < end (UTC) of a known symbol, from the vendor's history start."""
        if symbol not in self.symbols:
            return market_bars(symbol, date(2024, 1, 2), date(2024, 1, 2)).iloc[:0]
        first = max(start.tz_convert(NY).date(), self.history_start)
        last = (end - pd.Timedelta(microseconds=1)).tz_convert(NY).date()
        if first > last:
            return market_bars(symbol, date(2024, 1, 2), date(2024, 1, 2)).iloc[:0]
        key = (symbol, first, last)
        if key not in self.bars_cache:
            self.bars_cache[key] = market_bars(symbol, first, last)
        bars = self.bars_cache[key]
        bars = bars[(bars.index >= start) & (bars.index < end)]
        if self.factor != 1.0:
            bars = bars.assign(**{c: bars[c] * self.factor for c in ("open", "high", "low", "close")})
        return bars


class AlpacaFake(VendorFake):
    """GET /v2/stocks/bars: `bars` by symbol, `next_page_token` paging (10,000 bars a page by default)."""

    page_size = 10_000

    def __call__(self, method, path, query, headers, body):
        if failure := self.pop_failure():
            return failure
        if headers.get("APCA-API-KEY-ID") != self.key:
            return 403, {}, {"message": "forbidden"}
        if path != "/v2/stocks/bars":
            return 404, {}, {"message": "Not Found"}
        symbol = query["symbols"]
        start = pd.Timestamp(query["start"])
        end = pd.Timestamp(query["end"]) + pd.Timedelta(minutes=1)  # end is inclusive
        bars = self.bars(symbol, start, end)
        offset = int(query.get("page_token") or 0)
        size = min(int(query.get("limit", self.page_size)), self.page_size)
        page = bars.iloc[offset : offset + size]
        rows = [
            {
                "t": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "o": o,
                "h": h,
                "l": lo,
                "c": c,
                "v": int(v),
                "n": 10,
                "vw": (h + lo) / 2,
            }
            for t, o, h, lo, c, v in zip(
                page.index,
                page["open"],
                page["high"],
                page["low"],
                page["close"],
                page["volume"],
                strict=True,
            )
        ]
        token = str(offset + size) if offset + size < len(bars) else None
        return 200, {}, {"bars": {symbol: rows} if rows else {}, "next_page_token": token, "currency": "USD"}


class MassiveFake(VendorFake):
    """GET /v2/aggs/ticker/SYM/range/1/minute/FROM/TO: `results` with `next_url` paging."""

    page_size = 50_000

    def __call__(self, method, path, query, headers, body):
        if failure := self.pop_failure():
            return failure
        if headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {}, {"status": "ERROR", "request_id": "r1", "error": "Unknown API Key"}
        parts = path.split("/")
        symbol, start_ms, end_ms = parts[4], int(parts[8]), int(parts[9])
        start = pd.Timestamp(start_ms, unit="ms", tz="UTC")
        end = pd.Timestamp(end_ms, unit="ms", tz="UTC") + pd.Timedelta(minutes=1)
        bars = self.bars(symbol, start, end)
        offset = int(query.get("cursor") or 0)
        page = bars.iloc[offset : offset + self.page_size]
        results = [
            {
                "v": int(v),
                "vw": (h + lo) / 2,
                "o": o,
                "c": c,
                "h": h,
                "l": lo,
                "t": int(t.value // 10**6),
                "n": 7,
            }
            for t, o, h, lo, c, v in zip(
                page.index,
                page["open"],
                page["high"],
                page["low"],
                page["close"],
                page["volume"],
                strict=True,
            )
        ]
        answer = {
            "ticker": symbol,
            "queryCount": len(results),
            "resultsCount": len(results),
            "adjusted": query.get("adjusted") == "true",
            "status": "OK",
            "request_id": "r2",
        }
        if results:
            answer["results"] = results
        if offset + self.page_size < len(bars):
            answer["next_url"] = (
                f"https://api.massive.com/v2/aggs/ticker/{symbol}/range/1/minute/{start_ms}/{end_ms}"
                f"?cursor={offset + self.page_size}&adjusted={query.get('adjusted')}"
                f"&limit={query.get('limit')}"
            )
        return 200, {}, answer


class DatabentoFake(VendorFake):
    """POST /v0/metadata.get_cost (a bare number) and /v0/timeseries.get_range (zstd DBN bytes)."""

    cost_per_symbol_day = 0.01

    def __call__(self, method, path, query, headers, body):
        if failure := self.pop_failure():
            return failure
        auth = headers.get("Authorization", "")
        user = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":")[0] if auth else ""
        if user != self.key:
            return 401, {}, {"detail": "Authentication failed."}
        start, end = pd.Timestamp(query["start"]), pd.Timestamp(query["end"])
        start = start.tz_localize("UTC") if start.tz is None else start.tz_convert("UTC")
        end = end.tz_localize("UTC") if end.tz is None else end.tz_convert("UTC")
        symbol = query["symbols"]
        if path.endswith("metadata.get_cost"):
            return 200, {}, round((end - start).days * self.cost_per_symbol_day, 4)
        if path.endswith("timeseries.get_range"):
            if symbol not in self.symbols:
                return 422, {}, {"detail": f"Could not resolve symbol {symbol}"}
            return (
                200,
                {"Content-Type": "application/octet-stream"},
                dbn_bytes(symbol, self.bars(symbol, start, end), start, end),
            )
        return 404, {}, {"detail": "Not Found"}


def dbn_bytes(symbol: str, bars: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> bytes:
    """A zstd-compressed DBN stream of ohlcv-1m records, written with databento_dbn's own classes."""
    from types import SimpleNamespace as NS

    import zstandard
    from databento_dbn import Metadata, OHLCVMsg, RType, Schema, SType

    instrument = 15144
    meta = Metadata(
        dataset="XNAS.ITCH",
        start=int(start.value),
        end=int(end.value),
        stype_in=SType.RAW_SYMBOL,
        stype_out=SType.INSTRUMENT_ID,
        schema=Schema.OHLCV_1M,
        symbols=[symbol],
        mappings=[
            NS(
                raw_symbol=symbol,
                intervals=[
                    NS(
                        start_date=start.date(),
                        end_date=(end + pd.Timedelta(days=1)).date(),
                        symbol=str(instrument),
                    )
                ],
            )
        ],
    )
    px = 10**9
    records = b"".join(
        bytes(
            OHLCVMsg(
                RType.OHLCV_1M,
                2,
                instrument,
                int(t.value),
                int(round(o * px)),
                int(round(h * px)),
                int(round(lo * px)),
                int(round(c * px)),
                int(v),
            )
        )
        for t, o, h, lo, c, v in zip(
            bars.index, bars["open"], bars["high"], bars["low"], bars["close"], bars["volume"], strict=True
        )
    )
    return zstandard.ZstdCompressor().compress(bytes(meta) + records)


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl), usable as REQUESTS_CA_BUNDLE."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
