"""An in-process HTTP server on 127.0.0.1 with scripted replies, for clients that speak real HTTP."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Reply = tuple[int, dict[str, Any] | list[Any] | str, float]
"""(HTTP status, body: dict/list sent as JSON or str sent as is, seconds to wait before replying)."""

Handler = Callable[[str, dict[str, Any]], Reply]
"""Called with the request path (e.g. "/v1/embeddings") and its JSON body ({} when the body is empty)."""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up first (timeouts under test), which are expected here."""


class ScriptedServer:
    """Serves ``handler``'s replies on a free port of 127.0.0.1 while used as a context manager.

    ``url`` is the OpenAI-style base URL ("http://127.0.0.1:PORT/v1"); ``requests`` records every request as
    {"path", "method", "headers" (lower-cased names), "json"}; ``errors`` holds what the handler raised
    (each such request got a 500 reply).
    """

    def __init__(self, handler: Handler, *, text_content_type: str = "text/plain; charset=utf-8") -> None:
        self.handler = handler
        self.text_content_type = text_content_type
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        self.errors: list[Exception] = []
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ScriptedServer:
        self._server = _QuietServer(("127.0.0.1", 0), _request_handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [request["path"] for request in self.requests]

    def reply_to(self, path: str, body: dict[str, Any]) -> Reply:
        """The handler's reply, or a 500 holding the error it raised."""
        try:
            return self.handler(path, body)
        except Exception as exc:  # noqa: BLE001 - the test reads it from self.errors
            self.errors.append(exc)
            return 500, {"error": {"message": f"scripted handler raised {exc!r}"}}, 0.0


def _request_handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "request body is not JSON"}})
                return
            server.requests.append(
                {
                    "path": self.path,
                    "method": self.command,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "json": body,
                }
            )
            status, reply, delay = server.reply_to(self.path, body)
            if delay:
                time.sleep(delay)
            self._send(status, reply)

        def _send(self, status: int, reply: dict[str, Any] | list[Any] | str) -> None:
            if isinstance(reply, str):
                payload, content_type = reply.encode(), server.text_content_type
            else:
                payload, content_type = json.dumps(reply).encode(), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, which a timeout test intends

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
            """Keep test output clean."""

    return _RequestHandler


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a server process started by a test: terminate, then kill if it does not go within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)
