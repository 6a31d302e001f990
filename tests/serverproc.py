"""A real `meeting-server serve` process for integration tests.

Every process started here is stopped by pid (its whole process group, so
the worker goes too), even when the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, data_dir: Path, *, port: int | None = None, worker: bool = True, env: dict[str, str] | None = None,
                 async_mode: str = "eventlet", extra_args: list[str] | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.worker = worker
        self.async_mode = async_mode
        self.extra_args = extra_args or []
        self.env = {**os.environ, "MEETING_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("CI_DEBUG", None)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "meeting_server.cli", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=check)

    def start(self, timeout: float = 60) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "meeting_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--async-mode", self.async_mode, *self.extra_args]
        if not self.worker:
            args.append("--no-worker")
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(args, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server and its worker at once (their process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in the group
            except (ProcessLookupError, PermissionError):
                pass
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    # --- tiny HTTP client -------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                raw: bytes | None = None, content_type: str | None = None, headers: dict | None = None):
        data = raw
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if content_type:
            hdrs["Content-Type"] = content_type
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, token)
        return status, (json.loads(data) if data else None)

    def upload(self, path: str, filename: str, data: bytes, token: str, **fields: str) -> tuple[int, Any]:
        boundary = "----meetingtest" + os.urandom(8).hex()
        parts = []
        for k, v in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, _, body = self.request("POST", path, raw=b"".join(parts), token=token,
                                       content_type=f"multipart/form-data; boundary={boundary}")
        return status, json.loads(body)

    def login(self, username: str, password: str) -> str:
        status, body = self.json("POST", "/api/v1/auth/login", {"username": username, "password": password})
        assert status == 200, body
        return body["token"]

    def wait_document(self, doc_id: int, token: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, doc = self.json("GET", f"/api/v1/documents/{doc_id}", token=token)
            if doc and doc.get("status") in ("ready", "failed"):
                return doc
            time.sleep(0.2)
        raise TimeoutError(f"document {doc_id} not ready after {timeout} s:\n{self.log()}")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
