"""Screenshot the dashboard in a real browser: `python scripts/screenshot_dashboard.py --runs-dir DIR`.

Starts `streamlit run streamlit_app.py` on a free loopback port, opens it in headless Chromium (driven
over the DevTools protocol), waits until the app has finished running and its plotly charts are drawn,
and saves a PNG of the run view and one per requested tab (`--tab replay` is the Session replay tab;
`--trade ID` opens that trade's replay, selected and shaded, through the dashboard's `?trade=ID`
address). `--page "Runs"` / `--page "New backtest"` (repeatable) instead picks each page in the sidebar,
waits for its header and saves OUT_<page>.png. Exit code 0 when every screenshot was saved; 1 with one
line saying what failed. Needs a Chromium binary (Debian: `apt-get install -y chromium`); no network
beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import websockets

REPO = Path(__file__).resolve().parent.parent
TAB_ALIASES = {"overview": "Overview", "trades": "Trades", "replay": "Session replay", "sessions": "Sessions"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
# The app is ready when Streamlit's status widget is gone, a KPI or a message is shown, and every plotly
# chart of the active tab has drawn its SVG.
READY_JS = """(() => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const shown = main.querySelector('[data-testid="stMetric"], [data-testid="stAlert"]');
  if (!shown) return false;
  const panel = main.querySelector('[role="tabpanel"]:not([hidden])') || main;
  const plots = panel.querySelectorAll('.js-plotly-plot');
  return Array.from(plots).every(p => p.querySelector('.main-svg'));
})()"""
# A page other than the run view is ready when its header is drawn, nothing is running and its charts
# (if any) are drawn; PAGE is its name.
PAGE_READY_JS = """(() => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const head = Array.from(main.querySelectorAll('h2')).some(h => h.innerText.trim() === PAGE);
  if (!head || !main.querySelector('[data-testid="stVerticalBlock"] [data-testid="stElementContainer"]'))
    return false;
  return Array.from(main.querySelectorAll('.js-plotly-plot')).every(p => p.querySelector('.main-svg'));
})()"""
PICK_PAGE_JS = """(() => {
  const bar = document.querySelector('[data-testid="stSidebar"]');
  const label = bar && Array.from(bar.querySelectorAll('label')).find(l => l.innerText.trim() === PAGE);
  if (label) label.click();
  return !!label;
})()"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_browser(explicit: str | None) -> str:
    for name in (explicit,) if explicit else BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(
        "error: no Chromium found; install it (Debian: apt-get install -y chromium) or pass --browser"
    )


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: {url} did not answer within {timeout:.0f}s; see the streamlit log above")


def start_streamlit(runs_dir: Path, port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--", "--runs-dir", str(runs_dir),
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, start_new_session=True)


def start_browser(browser: str, profile: Path, width: int, height: int) -> tuple[subprocess.Popen, str]:
    """Chromium and the websocket URL of its first page."""
    command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
    proc = subprocess.Popen(
        [*command, "about:blank"], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    port = None
    while port is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"error: {browser} exited with code {proc.returncode} before opening DevTools")
        match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if match:
            port = int(match.group(1))
    if port is None:
        raise SystemExit(f"error: {browser} did not open DevTools within 30s")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
        pages = [t for t in json.load(response) if t.get("type") == "page"]
    return proc, pages[0]["webSocketDebuggerUrl"]


class DevTools:
    """Minimal Chrome DevTools protocol client: send a command, wait for its answer."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_ready(self, timeout: float, check: str = READY_JS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.evaluate(check):
                await asyncio.sleep(1.5)  # plotly transitions and fonts settle
                if await self.evaluate(check):
                    return
            await asyncio.sleep(0.5)
        raise SystemExit(f"error: the dashboard did not finish rendering within {timeout:.0f}s")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        try:
            path.write_bytes(base64.b64decode(shot["data"]))
        except OSError as exc:
            raise SystemExit(f"error: cannot write {path} ({exc.strerror}); check --out") from None


def tab_file(out: Path, tab: str | None) -> Path:
    if tab is None:
        return out
    slug = re.sub(r"[^a-z0-9]+", "_", tab.lower()).strip("_")
    return out.with_name(f"{out.stem}_{slug}{out.suffix}")


async def capture(
    ws_url: str, url: str, out: Path, tabs: list[str], width: int, height: int, pages: list[str]
) -> list[Path]:
    saved = []
    async with websockets.connect(ws_url, max_size=64 * 2**20) as ws:
        tools = DevTools(ws)
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await tools.call("Page.enable")
        await tools.call("Page.navigate", url=url)
        for page in pages:
            await open_page(tools, page)
            path = tab_file(out, page)
            await tools.screenshot(path)
            saved.append(path)
        if pages:
            return saved
        await tools.wait_ready(150)
        await tools.screenshot(out)
        saved.append(out)
        for tab in tabs:
            clicked = await tools.evaluate(
                "(() => { const t = Array.from(document.querySelectorAll('[role=\"tab\"]'))"
                f".find(e => e.innerText.trim() === {json.dumps(tab)}); if (t) t.click(); return !!t; }})()"
            )
            if not clicked:
                raise SystemExit(f"error: the dashboard has no tab named {tab!r}")
            await asyncio.sleep(0.5)
            await tools.wait_ready(120)
            path = tab_file(out, tab)
            await tools.screenshot(path)
            saved.append(path)
    return saved


async def open_page(tools: DevTools, page: str) -> None:
    """Pick `page` in the sidebar (once the app has drawn it) and wait until that page is drawn."""
    name = json.dumps(page)
    deadline = time.monotonic() + 90
    while not await tools.evaluate(PICK_PAGE_JS.replace("PAGE", name)):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: the dashboard has no page named {page!r}")
        await asyncio.sleep(0.5)
    await tools.wait_ready(150, PAGE_READY_JS.replace("PAGE", name))


def check_paths(runs_dir: Path, out: Path) -> None:
    """One error line (exit 1), before anything starts, when --runs-dir or the folder of --out is unusable."""
    if not runs_dir.is_dir():
        raise SystemExit(
            f"error: --runs-dir {runs_dir} is not a folder; pass the folder that holds the run folders"
        )
    folder = out.parent
    if not folder.is_dir():
        raise SystemExit(f"error: --out {out}: the folder {folder} does not exist; create it or pick another")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"error: --out {out}: the folder {folder} is not writable; pick another")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this script started (its own session, so its children go too)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", required=True, type=Path, help="runs folder the dashboard shows")
    parser.add_argument("--out", type=Path, default=Path("dashboard.png"), help="PNG of the first view")
    parser.add_argument(
        "--page", action="append", default=[], help='capture this page instead ("Runs", "New backtest")'
    )
    parser.add_argument(
        "--tab",
        action="append",
        default=[],
        help="also capture this tab (repeatable; 'replay' = Session replay)",
    )
    parser.add_argument("--trade", help="trade_id to open in the Session replay tab (e.g. SPY-00006)")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--browser", help="Chromium binary (default: first found on PATH)")
    args = parser.parse_args(argv)
    check_paths(args.runs_dir, args.out)
    browser = find_browser(args.browser)
    port = free_port()
    app = start_streamlit(args.runs_dir.resolve(), port)
    chromium = None
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        with tempfile.TemporaryDirectory(prefix="orb-chromium-") as profile:
            chromium, ws_url = start_browser(browser, Path(profile), args.width, args.height)
            try:
                url = f"http://127.0.0.1:{port}/" + (
                    f"?{urlencode({'trade': args.trade})}" if args.trade else ""
                )
                tabs = [TAB_ALIASES.get(tab.lower(), tab) for tab in args.tab]
                saved = asyncio.run(capture(ws_url, url, args.out, tabs, args.width, args.height, args.page))
            finally:
                stop(chromium)
    finally:
        stop(app)
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
