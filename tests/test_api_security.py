"""No request can read outside the runs folder, and bad input is a 404/422, never a 500.

A secret file with a marker sits next to the runs folder; a symlinked run and a symlinked member file
lead to it. Every hostile value goes to every parameter that names a file (run_id, symbol), through
the TestClient and through raw ASGI calls (which, like uvicorn, do not normalise `..` segments).
"""

from __future__ import annotations

import asyncio
import shutil
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from run_fixtures import build_run

from orb.api import create_app

MARKER = "TOPSECRET-7f3a"
DATA_ENDPOINTS = ("/api/trades", "/api/equity", "/api/metrics/core", "/api/sessions", "/api/config")
HOSTILE = [
    "../x",
    "..",
    ".",
    "../../secret.txt",
    "..%2F..%2Fetc",
    "%2e%2e%2fsecret.txt",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "a/b",
    "x\x00y",
    "backtest\x00/../../secret.txt",
    "x" * 10_240,
    ".tmp-backtest_20240101_000000-1",
    "escape/../../secret.txt",
    "latest/..",
    "ok\n",
    " spaced",
    "ünïcode",
    "",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("sec")
    (base / "secret.txt").write_text(MARKER)
    runs = base / "runs"
    run = build_run(runs, "backtest_20240301_120000")
    outside = build_run(base / "elsewhere", "backtest_20990101_000000", update_latest=False)
    (outside / "config.json").write_text(f'{{"leak": "{MARKER}"}}')
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    (runs / "secret_link").symlink_to(base / "secret.txt")
    # a second run whose member file is a symlink to the secret
    leaky = runs / "backtest_20240302_120000"
    shutil.copytree(run, leaky)
    (leaky / "config.json").unlink()
    (leaky / "config.json").symlink_to(base / "secret.txt")
    return runs


@pytest.fixture(scope="module")
def client(setup):
    return TestClient(create_app(setup, api_key="", cors_origins=""))


def _safe(response) -> None:
    assert response.status_code in (404, 409, 422), (response.status_code, response.text[:300])
    assert MARKER not in response.text
    assert "root:" not in response.text


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("endpoint", DATA_ENDPOINTS)
def test_hostile_run_ids_in_queries(client, endpoint, value):
    _safe(client.get(endpoint, params={"run_id": value}))


@pytest.mark.parametrize(
    "value", [v for v in HOSTILE if v not in ("", ".", "..")] + ["escape", "secret_link"]
)
def test_hostile_run_ids_in_the_path(client, value):
    # "", "." and ".." are dot segments the HTTP client removes; the raw ASGI test sends them as is
    _safe(client.get("/api/runs/" + quote(value, safe="")))
    response = client.get("/api/runs/" + quote(value, safe="/%"))
    if response.status_code == 200:  # the client resolved a dot segment into the plain run list
        assert response.url.path == "/api/runs" and MARKER not in response.text
    else:
        _safe(response)


@pytest.mark.parametrize(
    "value", [*HOSTILE, "SPY/../QQQ", "../SPY", "SPY\x00", "SPY_trades.parquet/..", "s" * 10_240]
)
@pytest.mark.parametrize("endpoint", ("/api/trades", "/api/equity", "/api/metrics/core", "/api/sessions"))
def test_hostile_symbols(client, endpoint, value):
    _safe(client.get(endpoint, params={"symbol": value}))


@pytest.mark.parametrize("endpoint", DATA_ENDPOINTS)
def test_symlinked_run_outside_is_not_found(client, endpoint):
    response = client.get(endpoint, params={"run_id": "escape"})
    assert response.status_code == 404
    assert MARKER not in response.text
    assert "escape" not in [r["run_id"] for r in client.get("/api/runs").json()]
    assert client.get("/api/runs/escape").status_code == 404


def test_symlinked_member_file_is_refused(client):
    response = client.get("/api/config", params={"run_id": "backtest_20240302_120000"})
    assert response.status_code == 409 and "outside the run folder" in response.json()["detail"]
    _safe(response)
    listed = {r["run_id"]: r for r in client.get("/api/runs").json()}
    assert listed["backtest_20240302_120000"]["status"] == "incomplete"


def test_unknown_but_well_formed_ids_are_404(client):
    assert client.get("/api/runs/backtest_19990101_000000").status_code == 404
    assert client.get("/api/trades", params={"symbol": "ZZZZ"}).status_code == 404


def _asgi_get(app, raw_path: bytes, query: bytes = b"", headers=()) -> tuple[int, bytes]:
    """One GET straight through the ASGI interface, with the path exactly as given (no normalising)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (b"/api/runs/../../secret.txt", b""),
        (b"/api/runs/../secret.txt", b""),
        (b"/api/runs/escape/../../secret.txt", b""),
        (b"/api/runs/..", b""),
        (b"/api/runs/a\x00b", b""),
        (b"/api/trades", b"run_id=../../secret.txt"),
        (b"/api/trades", b"run_id=%00"),
        (b"/api/trades", b"run_id=" + b"A" * 10_240),
        (b"/api/config", b"run_id=..%2F..%2Fsecret.txt"),
        (b"/api/equity", b"symbol=..%2F..%2F..%2Fsecret.txt"),
        (b"/api/equity", b"symbol=%ff%fe"),
        (b"/api/trades", b"limit=%00"),
    ],
)
def test_raw_paths_without_normalising(setup, path, query):
    status, body = _asgi_get(create_app(setup, api_key="", cors_origins=""), path, query)
    assert status in (404, 409, 422), (status, body[:300])
    assert MARKER.encode() not in body


def test_odd_api_key_headers_are_401_not_500(setup):
    app = create_app(setup, api_key="k3y", cors_origins="")
    for value in (b"\xff\xfe", b"k3y\x00", b"k" * 10_240, b"", b"K3Y"):
        status, body = _asgi_get(app, b"/api/runs", headers=[(b"x-api-key", value)])
        assert status == 401, (value[:20], body)
    assert _asgi_get(app, b"/api/runs", headers=[(b"x-api-key", b"k3y")])[0] == 200
