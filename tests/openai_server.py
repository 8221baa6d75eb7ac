"""A scripted OpenAI-compatible chat server on 127.0.0.1, for testing what goes through ``openai``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: reply text, or an HTTP error status with a body, optionally after a delay."""

    content: str = ""
    status: int = 200
    error: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: tuple[int, int] | None = (12, 3)
    pieces: tuple[str, ...] | None = None

    def stream_pieces(self) -> list[str]:
        """The pieces a streamed reply is sent in: ``pieces`` if given, else word by word."""
        return list(self.pieces) if self.pieces is not None else re.findall(r"\S+\s*", self.content)


Script = Sequence[Reply | str] | Callable[[dict[str, Any]], Reply | str]


class ScriptedOpenAI:
    """Serves /v1/chat/completions from a script of replies and records every request body.

    ``reject_formats`` names ``response_format`` types the server refuses with HTTP 500 without consuming a
    reply (llama.cpp's server does this for ``json_schema``). With ``api_key`` set, requests without that
    bearer key get 401 with a body that echoes the key they sent, as some providers do.
    """

    def __init__(
        self,
        replies: Script,
        *,
        reject_formats: Iterable[str] = (),
        api_key: str | None = None,
        model: str = "scripted-model",
    ) -> None:
        self._script = replies if callable(replies) else list(replies)
        self._position = 0
        self._lock = threading.Lock()
        self.reject_formats = frozenset(reject_formats)
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-openai",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        """The URL to give the client, ending in /v1."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, body: dict[str, Any]) -> None:
        """Keep a request body for the test to inspect."""
        with self._lock:
            self.requests.append(body)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        """The scripted reply to this request."""
        if callable(self._script):
            reply: Reply | str = self._script(body)
            return Reply(content=reply) if isinstance(reply, str) else reply
        with self._lock:
            if self._position < len(self._script):
                reply = self._script[self._position]
                self._position += 1
            else:
                reply = Reply(status=500, error=f"script exhausted after {len(self._script)} replies")
        return Reply(content=reply) if isinstance(reply, str) else reply


def _handler_for(server: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            model = {"id": server.model, "object": "model", "created": 0, "owned_by": "scripted"}
            self._send_json(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"no route {self.path}", "code": "not_found"}})
                return
            server.record(body)
            if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
                message = f"Incorrect API key provided: {sent}"
                self._send_json(401, {"error": {"message": message, "code": "invalid_api_key"}})
                return
            response_format = (body.get("response_format") or {}).get("type")
            if response_format in server.reject_formats:
                self._send_json(500, {"error": {"message": f"response_format {response_format} unsupported"}})
                return
            reply = server.next_reply(body)
            time.sleep(reply.delay_s)
            try:
                self._answer(reply, stream=bool(body.get("stream")))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout), which is what a delay is for

        def _answer(self, reply: Reply, *, stream: bool) -> None:
            if reply.status != 200:
                error = {"message": reply.error, "type": HTTPStatus(reply.status).phrase}
                self._send_json(reply.status, {"error": error}, headers=reply.headers)
            elif stream:
                self._send_stream(reply)
            else:
                self._send_json(200, _completion(reply, model=server.model), headers=reply.headers)

        def _send_json(
            self, status: int, payload: dict[str, Any], *, headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = reply.stream_pieces()
            for index, piece in enumerate(pieces):
                delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
                self._send_event(_chunk(delta, finish_reason=None, model=server.model))
            self._send_event(_chunk({}, finish_reason="stop", model=server.model))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _send_event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

    return Handler


def _completion(reply: Reply, *, model: str) -> dict[str, Any]:
    completion: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}
        ],
    }
    if reply.usage is not None:
        prompt_tokens, completion_tokens = reply.usage
        completion["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return completion


def _chunk(delta: dict[str, str], *, finish_reason: str | None, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
