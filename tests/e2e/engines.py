"""Drive Firefox and WebKitGTK with the W3C protocols they speak natively, from Debian packages only.

- Firefox (`firefox-esr`): WebDriver BiDi over a WebSocket (`--remote-debugging-port`), no
  geckodriver (Debian has none). The client is websocket-client (already a test dependency).
- WebKitGTK (`webkit2gtk-driver`: `WebKitWebDriver`, driving MiniBrowser from
  `libwebkit2gtk-4.1-0`): classic W3C WebDriver over HTTP (requests). MiniBrowser 2.50 has no
  headless mode, so it runs on a private `Xvfb` display (`xvfb`).

Both expose the same small interface the smoke tests need: `goto`, `js` (an expression, awaited,
its value passed back as JSON), `click` (a real pointer click at the element's centre through the
protocol's input actions), `wait` (poll an expression until truthy, bounded) and `close`. Every
process is started here and stopped by pid in `close()`, with its own temporary profile.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
XVFB = "/usr/bin/Xvfb"

#: Debian packages that provide each engine (scripts/system-deps.sh installs them).
PACKAGES = {"firefox": ["firefox-esr"], "webkit": ["webkit2gtk-driver", "xvfb"]}


def missing(engine: str) -> str | None:
    """What is missing to run `engine` here, or None."""
    need = {"firefox": [FIREFOX], "webkit": [WEBKIT_DRIVER, MINIBROWSER, XVFB]}[engine]
    absent = [p for p in need if not Path(p).exists()]
    if absent:
        return f"{', '.join(absent)} missing (apt-get install {' '.join(PACKAGES[engine])})"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a process we started (and its process group) by pid."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


class Driver:
    name = "?"
    version = "?"

    def js(self, expression: str):  # pragma: no cover - interface
        """The value of a JS expression (awaited) as JSON; a DOM node comes back as True."""
        raise NotImplementedError

    def wait(self, expression: str, timeout: float = 15.0, what: str | None = None):
        """Poll `expression` (a JS expression, may be a promise) until truthy; return its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except RuntimeError as e:  # e.g. the page is navigating: try again
                last = e
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: timed out waiting for {what or expression} (last: {last!r})")

    def text(self, css: str) -> str:
        return self.js(f"(document.querySelector({json.dumps(css)}) || {{}}).textContent || ''")

    def click(self, css: str) -> None:
        """Scroll the element into view, then a real pointer click at its centre."""
        self.wait(
            f"(() => {{ const e = document.querySelector({json.dumps(css)}); "
            "return !!e && !e.disabled && e.getClientRects().length > 0; })()",
            what=f"{css} visible",
        )
        self._click(css)


# ------------------------------------------------------------------ Firefox over WebDriver BiDi
class FirefoxBiDi(Driver):
    name = "firefox"

    def __init__(self, width: int = 1280, height: int = 800):
        import websocket

        self.profile = tempfile.mkdtemp(prefix="e2e-firefox-")
        # Quiet, offline-friendly profile: no updates, telemetry or first-run pages.
        Path(self.profile, "user.js").write_text(
            "\n".join(
                f'user_pref("{k}", {json.dumps(v)});'
                for k, v in {
                    "app.update.enabled": False,
                    "browser.shell.checkDefaultBrowser": False,
                    "datareporting.policy.dataSubmissionEnabled": False,
                    "toolkit.telemetry.enabled": False,
                    "browser.startup.homepage_override.mstone": "ignore",
                    "network.captive-portal-service.enabled": False,
                    "app.normandy.enabled": False,
                    "services.settings.server": "http://127.0.0.1:9/",
                    "dom.serviceWorkers.enabled": True,
                }.items()
            )
        )
        port = free_port()
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--profile", self.profile,
             "--remote-debugging-port", str(port), f"--width={width}", f"--height={height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
        )  # fmt: skip
        try:
            wait_port(port, self.proc, 60)
            # Firefox refuses a WebSocket handshake that carries an Origin header.
            self.ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}/session", timeout=60, suppress_origin=True
            )
            self.n = 0
            caps = self.cmd("session.new", {"capabilities": {}})["capabilities"]
            self.version = caps["browserVersion"]
            self.context = self.cmd("browsingContext.getTree", {})["contexts"][0]["context"]
            self.cmd(
                "browsingContext.setViewport",
                {"context": self.context, "viewport": {"width": width, "height": height}},
            )
        except Exception:
            self.close()
            raise

    def cmd(self, method: str, params: dict, timeout: float = 60.0) -> dict:
        self.n += 1
        my = self.n
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") != my:
                continue  # an event or a late answer
            if msg.get("type") == "error":
                raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
            return msg["result"]
        raise TimeoutError(method)

    def goto(self, url: str) -> None:
        self.cmd("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def js(self, expression: str):
        r = self.cmd(
            "script.evaluate",
            {
                "expression": f"(async () => {{ const v = await ({expression}); return JSON.stringify(v instanceof Node ? true : (v ?? null)); }})()",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if r.get("type") == "exception":
            raise RuntimeError(r["exceptionDetails"].get("text"))
        return json.loads(r["result"]["value"])

    def _click(self, css: str) -> None:
        r = self.cmd(
            "script.evaluate",
            {
                "expression": f"(() => {{ const e = document.querySelector({json.dumps(css)}); "
                "e.scrollIntoView({block: 'center'}); return e; })()",
                "target": {"context": self.context},
                "awaitPromise": False,
                "resultOwnership": "root",
            },
        )
        if r.get("type") == "exception":
            raise RuntimeError(r["exceptionDetails"].get("text"))
        ref = {"sharedId": r["result"]["sharedId"]}
        self.cmd(
            "input.performActions",
            {
                "context": self.context,
                "actions": [
                    {
                        "type": "pointer",
                        "id": "mouse",
                        "parameters": {"pointerType": "mouse"},
                        "actions": [
                            {
                                "type": "pointerMove",
                                "x": 0,
                                "y": 0,
                                "origin": {"type": "element", "element": ref},
                            },
                            {"type": "pointerDown", "button": 0},
                            {"type": "pointerUp", "button": 0},
                        ],
                    }
                ],
            },
        )

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                try:
                    self.cmd("browser.close", {}, timeout=10)
                except Exception:  # closing anyway
                    pass
                self.ws.close()
        finally:
            stop(self.proc)
            shutil.rmtree(self.profile, ignore_errors=True)


# ------------------------------------------------------------------ WebKitGTK over classic WebDriver
class WebKitGTK(Driver):
    name = "webkit"

    def __init__(self, width: int = 1280, height: int = 800):
        import requests

        self.http = requests.Session()
        self.xvfb = self.driver = None
        self.home = tempfile.mkdtemp(prefix="e2e-webkit-")
        try:
            display = self._start_xvfb(width, height)
            port = free_port()
            env = {**os.environ, "DISPLAY": display, "HOME": self.home, "XDG_CACHE_HOME": self.home,
                   "XDG_DATA_HOME": self.home, "XDG_CONFIG_HOME": self.home, "WEBKIT_DISABLE_COMPOSITING_MODE": "1"}  # fmt: skip
            self.driver = subprocess.Popen(
                [WEBKIT_DRIVER, f"--port={port}", "--host=127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
            )  # fmt: skip
            wait_port(port, self.driver)
            self.base = f"http://127.0.0.1:{port}"
            caps = {"webkitgtk:browserOptions": {"binary": MINIBROWSER, "args": ["--automation"]}}
            r = self.http.post(
                f"{self.base}/session", json={"capabilities": {"alwaysMatch": caps}}, timeout=120
            )
            v = r.json()["value"]
            if "sessionId" not in v:
                raise RuntimeError(f"WebKitWebDriver refused the session: {v}")
            self.sid = v["sessionId"]
            self.version = v["capabilities"].get("browserVersion", "?")
            self.call("POST", "/window/rect", {"width": width, "height": height, "x": 0, "y": 0})
        except Exception:
            self.close()
            raise

    def _start_xvfb(self, width: int, height: int) -> str:
        # -displayfd: Xvfb picks a free display number and tells us which.
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(
            [XVFB, "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        os.close(w)
        with os.fdopen(r) as f:
            num = f.readline().strip()
        if not num:
            raise RuntimeError("Xvfb did not start")
        return f":{num}"

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 60.0):
        r = self.http.request(method, f"{self.base}/session/{self.sid}{path}", json=body, timeout=timeout)
        v = r.json().get("value")
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {v}")
        return v

    def goto(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def js(self, expression: str):
        v = self.call(
            "POST",
            "/execute/async",
            {
                "script": "const done = arguments[arguments.length - 1];"
                f"(async () => {{ const v = await ({expression}); return JSON.stringify(v instanceof Node ? true : (v ?? null)); }})()"
                ".then(done, (e) => done(JSON.stringify({__error: String(e)})));",
                "args": [],
            },
        )
        out = json.loads(v)
        if isinstance(out, dict) and "__error" in out:
            raise RuntimeError(out["__error"])
        return out

    def _click(self, css: str) -> None:
        el = self.call("POST", "/element", {"using": "css selector", "value": css})
        eid = next(iter(el.values()))
        self.call("POST", f"/element/{eid}/click", {})

    def close(self) -> None:
        try:
            if getattr(self, "sid", None):
                try:
                    self.http.delete(f"{self.base}/session/{self.sid}", timeout=20)
                except Exception:  # closing anyway
                    pass
        finally:
            stop(self.driver)
            stop(self.xvfb)
            shutil.rmtree(self.home, ignore_errors=True)


ENGINES = {"firefox": FirefoxBiDi, "webkit": WebKitGTK}
