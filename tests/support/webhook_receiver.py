"""A tiny webhook receiver on 127.0.0.1 for the notification tests and the notify benchmark.

It checks every POST with the public receiver helper (`mirrorwatch.webhooks.verify_webhook`), as a
team's receiver would: a forged or stale message gets 401, a repeat of an event id it already took
(a retry after a lost answer, or a replay) gets 200 and is counted as a duplicate, not taken again.
It can be taken down and brought up again on the same port (an outage), or made to answer 500."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from typing import Any

from mirrorwatch.webhooks import WebhookRejected, WebhookReplayed, verify_webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, secret: str = "", port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.accepted: list[dict[str, Any]] = []  # every message taken, in arrival order
        self.duplicates = 0
        self.rejected: list[str] = []
        self.status = 200  # what a valid new message is answered with (500: a failing receiver)
        self.delay_s = 0.0  # a slow receiver: answer after this long
        self.seen: set[str] = set()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code = receiver.handle(dict(self.headers.items()), body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            if self.status != 200:
                return self.status
            try:
                data = verify_webhook(self.secret, headers, body, seen_ids=self.seen)
            except WebhookReplayed:
                self.duplicates += 1
                return 200
            except WebhookRejected as exc:
                self.rejected.append(str(exc))
                return 401
            self.accepted.append(data)
            return 200

    def start(self) -> Receiver:
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def events(self) -> list[dict[str, Any]]:
        """Accepted single events, digests unpacked, in arrival order."""
        out = []
        for m in self.accepted:
            out.extend(m["events"] if m.get("kind") == "digest" else [m])
        return out

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
