"""Open a built docs site in headless Chromium: console errors per page, DOM checks,
screenshots.

Drives the system Chromium (Debian's ``chromium`` package, no browser download) through
the DevTools protocol with ``websocket-client``. The site is served over HTTP from a
thread (``file://`` pages cannot fetch the search index, which would be an error of the
test's own making). Used by ``tests/docs/test_site_in_browser.py`` and from the command
line to look at pages:

    mkdocs build -d /tmp/site
    python tools/site_browser.py /tmp/site performance/ index.html --shots docs/images

prints each page's console errors and writes a full-page PNG per page.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """The Chromium executable (``$CHROMIUM`` first), or a RuntimeError saying how to get it."""
    for name in (os.environ.get("CHROMIUM"), *CANDIDATES):
        found = name and shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "No Chromium found (looked for $CHROMIUM, " + ", ".join(CANDIDATES) + "). "
        "Install Debian's package: apt-get install -y chromium (.ci/run does)."
    )


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free local port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # the test's output, not access logs
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Browser:
    """One headless Chromium process and one tab, driven over the DevTools protocol."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900):
        import websocket  # the docs extra installs websocket-client

        self._profile = tempfile.mkdtemp(prefix="autolog-chromium-")
        args = [
            executable or find_chromium(),
            "--headless",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with it
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            port = self._port(timeout=60)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            self._ws = websocket.create_connection(
                page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
            )
        except BaseException:
            self.close()
            raise
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _port(self, timeout: float) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read() if self._proc.stderr else ""
                raise RuntimeError(f"Chromium exited with {self._proc.returncode}: {err[-2000:]}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.1)
        raise RuntimeError(f"Chromium did not open its DevTools port within {timeout:.0f} s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile are kept."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def _wait_event(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == name for e in self._events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name} within {timeout:.0f} s")
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(Exception):
                message = json.loads(self._ws.recv())
                if "method" in message:
                    self._events.append(message)
        self._ws.settimeout(30)

    def open(self, url: str, settle: float = 0.5) -> list[str]:
        """Load ``url``; the console errors and uncaught exceptions it produced."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired", timeout=60)
        time.sleep(settle)  # scripts run after load (search worker, palette)
        self.call("Runtime.evaluate", expression="1")  # collect the events sent meanwhile
        return errors(self._events)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression in the page (a promise's, when awaited)."""
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, height: int | None = None) -> None:
        """A PNG of the page from its top: all of it, or its first ``height`` pixels."""
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        if height:
            clip["height"] = min(height, size["height"])
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True, "clip": clip}
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, failed loads and uncaught exceptions among DevTools events."""
    out = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            out.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            out.append(
                "console: " + " ".join(str(a.get("value", a.get("description"))) for a in args)
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="a built site (mkdocs build -d DIR)")
    parser.add_argument("pages", nargs="+", help="paths in the site, e.g. performance/")
    parser.add_argument("--shots", type=Path, help="write <page>.png screenshots here")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, help="only the page's first HEIGHT pixels")
    args = parser.parse_args(argv)
    failed = False
    with serve(args.site) as base, Browser(width=args.width) as browser:
        for page in args.pages:
            problems = browser.open(base + page.lstrip("/"))
            height = browser.evaluate("document.documentElement.scrollHeight")
            print(f"{page}: {height} px tall, {len(problems)} console error(s)")
            for problem in problems:
                print(f"  {problem}")
            failed |= bool(problems)
            if args.shots:
                name = page.strip("/").removesuffix("index.html").strip("/") or "home"
                browser.screenshot(args.shots / f"{name.replace('/', '-')}.png", args.height)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
