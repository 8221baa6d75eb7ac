"""The OpenAI-compatible implementation of :class:`~agents.llm.ChatModel`: retries, structured output, usage.

The only module that imports the ``openai`` SDK. Every HTTP call lands as a :class:`~agents.llm.CallRecord`
in the model's ledger. A model bound to a question's :class:`~agents._limits.RunLimits`
(:meth:`OpenAIChatModel.within`) counts every HTTP request against its budget, shortens each timeout to the
time left before its deadline, and stops for the rest of the question once the endpoint cannot be reached.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import openai
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, ValidationError

from agents._limits import RunLimits
from agents.errors import LLMError, LLMOutputError
from agents.llm import CallRecord, Messages, UsageLedger
from agents.settings import LLMConfig
from prompts import render
from prompts.phrases import REASK, SCHEMA_INSTRUCTION
from retrieval.tokens import count_tokens, encoder
from retrieval.urls import redact_url

__all__ = ["OpenAIChatModel"]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

StructuredMode = Literal["json_schema", "json_object", "prompt"]

_NEXT_MODE: dict[StructuredMode, StructuredMode | None] = {
    "json_schema": "json_object",
    "json_object": "prompt",
    "prompt": None,
}
# Statuses with which servers refuse a response_format they do not support (llama.cpp answers 500).
_REJECTION_STATUSES = frozenset({400, 422, 500})
_MAX_DELAY_S = 10.0
_FENCED_REPLY = re.compile(r"```(?:json|JSON)?[ \t]*\n(?P<body>.*)\n[ \t]*```", re.DOTALL)
_BAD_SERVER = "check that llm.base_url points at an OpenAI-compatible server"
# The HTTP library under ``openai``: upstream uses httpx, some builds its fork httpx2; reading a reply's body
# ourselves raises that library's own timeout and transport errors.
_TRANSPORTS = [importlib.import_module(n) for n in ("httpx", "httpx2") if importlib.util.find_spec(n)]
_READ_TIMEOUTS: tuple[type[Exception], ...] = tuple(t.TimeoutException for t in _TRANSPORTS)
_TRANSPORT_ERRORS: tuple[type[Exception], ...] = tuple(t.TransportError for t in _TRANSPORTS)


class _MalformedReply(ValueError):
    """An HTTP 200 reply that is not a chat completion (not JSON, not an object, no choices)."""


@dataclass
class _FormatChoice:
    """How structured replies are requested, shared by a model and its bound copies."""

    mode: StructuredMode
    settled: bool
    lock: threading.Lock


class OpenAIChatModel:
    """An OpenAI-compatible chat client with our retries, structured-output fallback and usage ledger."""

    def __init__(self, config: LLMConfig, *, ledger: UsageLedger | None = None) -> None:
        self.config = config
        self.ledger = ledger if ledger is not None else UsageLedger()
        self._secret = config.api_key.get_secret_value() if config.api_key is not None else ""
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=self._secret or "not-needed",
            timeout=config.timeout_s,
            max_retries=0,
        )
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        requested = config.structured_output
        self._format = _FormatChoice(
            mode="json_schema" if requested == "auto" else requested,
            settled=requested != "auto",
            lock=threading.Lock(),
        )
        self._limits: RunLimits | None = None

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.config.model!r}, endpoint={self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The base URL requests go to, any key written into it masked (it appears in errors and traces)."""
        return redact_url(str(self._client.base_url).rstrip("/"))

    @property
    def structured_mode(self) -> StructuredMode:
        """How structured replies are requested now; 'auto' settles on the first mode the server accepts."""
        with self._format.lock:
            return self._format.mode

    def within(self, limits: RunLimits) -> OpenAIChatModel:
        """This model (same client, ledger and concurrency slots) bound to one question's limits."""
        bound = copy.copy(self)
        bound._limits = limits
        return bound

    def text(self, messages: Messages, *, stage: str, max_tokens: int | None = None) -> str:
        """Send ``messages`` and return the reply text, cut at ``max_tokens`` if the server sent more."""
        text = self._complete(self._request(messages, max_tokens=max_tokens), stage=stage, mode="text")
        return text if max_tokens is None else _cut(text, max_tokens)

    def structured(
        self, messages: Messages, schema: type[T], *, stage: str, max_tokens: int | None = None
    ) -> T:
        """Send ``messages`` and return the reply validated as ``schema``, re-asking once if it is invalid."""
        reply = self._structured_reply(messages, schema, stage=stage, max_tokens=max_tokens)
        try:
            return _parse_reply(reply, schema)
        except ValidationError as exc:
            error = _describe_validation(exc)
        reask = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": REASK.format(error=error)},
        ]
        reply = self._structured_reply(reask, schema, stage=stage, max_tokens=max_tokens)
        try:
            return _parse_reply(reply, schema)
        except ValidationError as exc:
            raise LLMOutputError(
                f"{stage}: the reply is not a valid {schema.__name__} even after one corrective re-ask "
                f"({_describe_validation(exc)}); try a stronger model or another llm.structured_output",
                stage=stage,
                raw_text=reply,
            ) from exc

    def stream(
        self, messages: Messages, *, stage: str, max_tokens: int | None = None
    ) -> Generator[str, None, None]:
        """Send ``messages`` and yield the reply as it arrives, cut at ``max_tokens``; closing the generator
        ends the request. A stall longer than the timeout, a dropped connection, a malformed event or the
        question's deadline ends it with an LLMError."""
        started = time.monotonic()
        request = self._request(messages, max_tokens=max_tokens)
        request["stream"] = True
        try:
            chunks, attempts, timeout_s = self._send(request, stage=stage)
        except LLMError as exc:
            self._record_failure(stage, "stream", started, exc)
            raise
        pieces: list[str] = []
        error: str | None = None
        try:
            for piece in self._pieces(chunks, stage=stage, attempts=attempts, timeout_s=timeout_s):
                kept, full = piece, False
                if max_tokens is not None:
                    kept, full = _within_tokens("".join(pieces), piece, max_tokens)
                if kept:
                    pieces.append(kept)
                    yield kept
                if full:
                    break
        except LLMError as exc:
            error = str(exc)
            raise
        finally:
            chunks.close()
            text = "".join(pieces)
            usage = (_count_message_tokens(messages), count_tokens(text))
            self._record(stage, "stream", started, attempts=attempts, usage=usage, error=error)

    def _pieces(self, chunks: Any, *, stage: str, attempts: int, timeout_s: float) -> Iterator[str]:
        """The text pieces of a streamed reply; every way the stream can break is an LLMError."""
        try:
            for chunk in chunks:
                if self._limits is not None and self._limits.left_s() <= 0:
                    passed = self._limits.deadline_passed()
                    message = f"{stage}: the reply was still streaming when the {passed}"
                    raise LLMError(message, stage=stage, attempts=attempts, status=None, retryable=False)
                if piece := _piece_of(chunk):
                    yield piece
        except openai.APIError as exc:
            raise self._stream_error(exc, stage=stage, attempts=attempts, timeout_s=timeout_s) from (
                self._safe_cause(exc)
            )
        except ValueError as exc:
            message = f"{stage}: {self.endpoint} sent a malformed stream ({exc}); {_BAD_SERVER}"
            raise LLMError(
                self._redact(message), stage=stage, attempts=attempts, status=200, retryable=False
            ) from self._safe_cause(exc)

    def _stream_error(self, exc: openai.APIError, *, stage: str, attempts: int, timeout_s: float) -> LLMError:
        if isinstance(exc, openai.APITimeoutError):
            why = f"the reply stalled: nothing for {timeout_s:.3g} s; raise llm.timeout_s or check the server"
        elif isinstance(exc, openai.APIConnectionError):
            why = f"the connection dropped mid-reply ({_root_cause(exc)})"
        else:
            why = f"the server sent an error mid-reply: {_server_detail(exc)}"
        message = self._redact(f"{stage}: {self.endpoint}: {why}")
        return LLMError(message, stage=stage, attempts=attempts, status=_status_of(exc), retryable=False)

    def ping(self) -> str:
        """Make one tiny call and return the reply; the LLMError raised says exactly what failed."""
        request = self._request(render("ping"), max_tokens=8)
        return self._complete(request, stage="ping", mode="text", max_retries=0)

    def _structured_reply(
        self, messages: Messages, schema: type[BaseModel], *, stage: str, max_tokens: int | None
    ) -> str:
        while True:
            with self._format.lock:
                mode, settled = self._format.mode, self._format.settled
            probing = not settled and _NEXT_MODE[mode] is not None
            request = self._request(_with_schema(messages, schema, mode), max_tokens=max_tokens)
            if (response_format := _response_format(schema, mode)) is not None:
                request["response_format"] = response_format
            try:
                reply = self._complete(
                    request, stage=stage, mode=mode, fail_fast=_REJECTION_STATUSES if probing else frozenset()
                )
            except LLMError as exc:
                if (
                    not probing
                    or exc.status not in _REJECTION_STATUSES
                    or not self._fall_back_from(mode, exc)
                ):
                    raise
                continue
            with self._format.lock:
                self._format.settled = self._format.settled or self._format.mode == mode
            return reply

    def _fall_back_from(self, rejected: StructuredMode, error: LLMError) -> bool:
        with self._format.lock:
            if self._format.mode != rejected:
                return True
            if self._format.settled or (fallback := _NEXT_MODE[rejected]) is None:
                return False
            self._format.mode = fallback
        logger.warning(
            "%s: %s rejected response_format %s (HTTP %s); using %s for this client from now on",
            error.stage,
            self.endpoint,
            rejected,
            error.status,
            fallback,
        )
        return True

    def _request(self, messages: Messages, *, max_tokens: int | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
        }
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        return request

    def _complete(
        self,
        request: dict[str, Any],
        *,
        stage: str,
        mode: str,
        fail_fast: frozenset[int] = frozenset(),
        max_retries: int | None = None,
    ) -> str:
        started = time.monotonic()
        try:
            body, attempts, _ = self._send(request, stage=stage, fail_fast=fail_fast, max_retries=max_retries)
            text, tokens = self._parse(body, stage=stage, attempts=attempts)
        except LLMError as exc:
            self._record_failure(stage, mode, started, exc)
            raise
        if tokens is None:
            tokens = (_count_message_tokens(request["messages"]), count_tokens(text))
        self._record(stage, mode, started, attempts=attempts, usage=tokens)
        return text

    def _parse(self, body: bytes, *, stage: str, attempts: int) -> tuple[str, tuple[int, int] | None]:
        try:
            return _completion_of(body)
        except _MalformedReply as exc:
            message = self._redact(f"{stage}: {self.endpoint} answered HTTP 200 but {exc}; {_BAD_SERVER}")
            raise LLMError(message, stage=stage, attempts=attempts, status=200, retryable=False) from exc

    def _send(
        self,
        request: dict[str, Any],
        *,
        stage: str,
        fail_fast: frozenset[int] = frozenset(),
        max_retries: int | None = None,
    ) -> tuple[Any, int, float]:
        """The reply (its body, or a stream when streaming), the attempts it took and the last timeout.

        Each attempt is admitted by the question's limits; a connection failure marks the endpoint down
        for the rest of the question, and no retry starts after the deadline.
        """
        retries = self.config.max_retries if max_retries is None else max_retries
        limits = self._limits
        for attempt in range(retries + 1):
            timeout_s = self.config.timeout_s
            if limits is not None:
                if (refusal := limits.admit()) is not None:
                    after = f"after {attempt} attempt{'s' if attempt != 1 else ''}: " if attempt else ""
                    message = f"{stage}: {after}{refusal}"
                    raise LLMError(message, stage=stage, attempts=attempt, status=None, retryable=False)
                timeout_s = limits.timeout_s(timeout_s)
            try:
                with self._slots:
                    return self._post(request, timeout_s=timeout_s), attempt + 1, timeout_s
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                error = self._error(exc, stage=stage, attempts=attempt + 1, timeout_s=timeout_s)
                unreachable = _unreachable(exc)
                delay = _retry_delay(exc, attempt=attempt, backoff_s=self.config.backoff_s)
                if limits is not None and unreachable:
                    limits.mark_down(str(error))
                if (
                    not error.retryable
                    or attempt == retries
                    or error.status in fail_fast
                    or (limits is not None and (unreachable or not limits.can_wait(delay)))
                ):
                    raise error from self._safe_cause(exc)
                logger.info("%s: %s; retrying in %.2f s", stage, type(exc).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _post(self, request: dict[str, Any], *, timeout_s: float) -> Any:
        """One HTTP request: a stream, or the whole body of a reply that must arrive within ``timeout_s``
        (httpx's timeout bounds each read, so a server dripping bytes would otherwise never time out)."""
        completions = self._client.chat.completions
        if request.get("stream"):
            return completions.create(**request, timeout=timeout_s)
        started = time.monotonic()
        with completions.with_streaming_response.create(**request, timeout=timeout_s) as response:
            body = bytearray()
            try:
                for part in response.iter_bytes():
                    body += part
                    if time.monotonic() - started > timeout_s:
                        raise openai.APITimeoutError(request=response.http_response.request)
            except _READ_TIMEOUTS as exc:
                raise openai.APITimeoutError(request=response.http_response.request) from exc
            except _TRANSPORT_ERRORS as exc:
                raise openai.APIConnectionError(request=response.http_response.request) from exc
            return bytes(body)

    def _error(self, exc: openai.APIError, *, stage: str, attempts: int, timeout_s: float) -> LLMError:
        message = f"{stage}: {self._describe_failure(exc, attempts=attempts, timeout_s=timeout_s)}"
        return LLMError(
            self._redact(message),
            stage=stage,
            attempts=attempts,
            status=_status_of(exc),
            retryable=_is_retryable(exc),
        )

    def _describe_failure(self, exc: openai.APIError, *, attempts: int, timeout_s: float) -> str:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        url = self.endpoint
        if isinstance(exc, openai.APITimeoutError) and timeout_s < self.config.timeout_s and self._limits:
            return (
                f"no reply from {url} in the {timeout_s:.3g} s left before the question's "
                f"{self._limits.deadline_passed()} ({tries}); raise MULTIGRAIN_DEADLINE_S"
            )
        if isinstance(exc, openai.APITimeoutError):
            return (
                f"no reply from {url}: timed out after {timeout_s:g} s ({tries}); "
                "raise llm.timeout_s or check that the server is not overloaded"
            )
        if isinstance(exc, openai.APIConnectionError):
            if _refused(exc):
                reason, advice = "connection refused", "start the server or fix llm.base_url"
            else:
                reason, advice = _root_cause(exc), "check llm.base_url and the network"
            return f"cannot connect to {url}: {reason} ({tries}); {advice}"
        status = _status_of(exc)
        detail = _server_detail(exc)
        if status == 401:
            return f"{url} rejected the API key (HTTP 401: {detail}); set a valid llm.api_key"
        if status == 403:
            return f"{url} denied access to model {self.config.model!r} (HTTP 403: {detail}); check the key"
        if status == 404:
            return (
                f"HTTP 404 from {url}: model {self.config.model!r} not found or wrong base URL ({detail}); "
                "check llm.model, and that llm.base_url ends where /chat/completions starts (often /v1)"
            )
        if status == 429:
            return f"rate limited by {url} (HTTP 429, {tries}: {detail}); lower llm.max_concurrency or wait"
        if status is not None and status >= 500:
            return f"server error HTTP {status} from {url} ({tries}): {detail}"
        return f"HTTP {status} from {url}: the request was refused ({detail})"

    def _redact(self, text: str) -> str:
        """Mask the API key; a key too short to be secret (a local server's "x") is left alone."""
        return text.replace(self._secret, "***") if len(self._secret or "") >= 8 else text

    def _safe_cause(self, exc: BaseException) -> BaseException | None:
        """The exception to chain, or None if the server echoed the key into it."""
        return exc if not self._secret or self._secret not in str(exc) else None

    def _record(
        self,
        stage: str,
        mode: str,
        started: float,
        *,
        attempts: int,
        usage: tuple[int, int] = (0, 0),
        error: str | None = None,
    ) -> None:
        prompt_tokens, completion_tokens = usage
        cost = (
            prompt_tokens * self.config.price_in_per_mtok + completion_tokens * self.config.price_out_per_mtok
        ) / 1_000_000
        record = CallRecord(
            stage=stage,
            model=self.config.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=time.monotonic() - started,
            attempts=attempts,
            cost_usd=cost,
            mode=mode,
            error=error,
        )
        self.ledger.add(record)
        logger.info("llm call %s", stage, extra={"llm_call": asdict(record)})

    def _record_failure(self, stage: str, mode: str, started: float, error: LLMError) -> None:
        """Record a failed call, unless the question's limits refused it before any request was sent."""
        if error.attempts:
            self._record(stage, mode, started, attempts=error.attempts, error=str(error))


def _with_schema(messages: Messages, schema: type[BaseModel], mode: StructuredMode) -> Messages:
    if mode == "json_schema":
        return messages
    instruction = SCHEMA_INSTRUCTION + json.dumps(schema.model_json_schema())
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _response_format(schema: type[BaseModel], mode: StructuredMode) -> dict[str, Any] | None:
    if mode == "json_schema":
        json_schema = {"name": schema.__name__[:64], "schema": schema.model_json_schema(), "strict": False}
        return {"type": "json_schema", "json_schema": json_schema}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    return None


def _parse_reply(reply: str, schema: type[T]) -> T:
    fenced = _FENCED_REPLY.fullmatch(reply.strip())
    return schema.model_validate_json(fenced["body"] if fenced else reply)


def _describe_validation(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "reply"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def _is_retryable(exc: openai.APIError) -> bool:
    if isinstance(exc, openai.APIConnectionError):
        return True
    status = _status_of(exc)
    return status is not None and (status == 429 or status >= 500)


def _status_of(exc: openai.APIError) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def _retry_delay(exc: openai.APIError, *, attempt: int, backoff_s: float) -> float:
    delay = backoff_s * 2**attempt
    if isinstance(exc, openai.APIStatusError):
        delay = _retry_after_s(exc.response.headers.get("retry-after")) or delay
    return min(max(delay, 0.0), _MAX_DELAY_S)


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(UTC)).total_seconds()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _refused(exc: BaseException) -> bool:
    return any(isinstance(cause, ConnectionRefusedError) or "refused" in str(cause) for cause in _causes(exc))


def _root_cause(exc: BaseException) -> str:
    *_, root = _causes(exc)
    return str(root) or type(root).__name__


def _server_detail(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    return exc.message[:300]


def _count_message_tokens(messages: Messages) -> int:
    """Approximate prompt tokens: content plus the few tokens each message's framing costs."""
    return sum(count_tokens(message["content"]) + 4 for message in messages) + 3


def _completion_of(body: bytes) -> tuple[str, tuple[int, int] | None]:
    """The reply text and (prompt, completion) token usage of a chat completion's JSON body."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise _MalformedReply(f"the body is not JSON ({body[:80]!r})") from exc
    if not isinstance(payload, dict):
        raise _MalformedReply(f"the body is a JSON {type(payload).__name__}, not an object")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _MalformedReply(f"the reply has no choices ({json.dumps(payload)[:200]})")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(content, str | None):
        raise _MalformedReply("the first choice has no text message")
    usage = payload.get("usage")
    tokens = None
    if isinstance(usage, dict):
        counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
        if all(isinstance(n, int) for n in counts):
            tokens = (int(counts[0] or 0), int(counts[1] or 0))
    return content or "", tokens


def _piece_of(chunk: object) -> str | None:
    """The text a streamed chunk adds, if any."""
    if not isinstance(chunk, ChatCompletionChunk):
        raise _MalformedReply(f"an event is a JSON {type(chunk).__name__}, not a chat completion chunk")
    if not chunk.choices:
        return None
    content = getattr(getattr(chunk.choices[0], "delta", None), "content", None)
    if content is not None and not isinstance(content, str):
        raise _MalformedReply("an event's content is not text")
    return content


def _cut(text: str, max_tokens: int) -> str:
    """``text`` cut to its first ``max_tokens`` tokens (a server may ignore max_tokens)."""
    tokens = encoder().encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    return encoder().decode(tokens[:max_tokens]).rstrip("\ufffd")


def _within_tokens(so_far: str, piece: str, max_tokens: int) -> tuple[str, bool]:
    """The part of ``piece`` that keeps a streamed reply within ``max_tokens``, and whether it is now full."""
    text = so_far + piece
    if count_tokens(text) <= max_tokens:
        return piece, False
    return _cut(text, max_tokens)[len(so_far) :], True


def _unreachable(exc: openai.APIError) -> bool:
    """A connection failure other than a timeout: the endpoint is down, not slow."""
    return isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)
