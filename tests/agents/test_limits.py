"""A question's hard limits over real HTTP: call budget, deadline, dead endpoint, broken replies, strict mode.

The model is the scripted OpenAI-compatible server on 127.0.0.1, or a raw socket server for streams that
stall or break mid-reply, or a closed port for a dead server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from agents.agent import Agent, Answer, ResetEvent, TokenEvent
from agents.context import CallBudget, RunLimits
from agents.errors import LLMError, StageDegradedError
from agents.openai_chat import OpenAIChatModel
from agents.settings import LLMConfig, load_settings
from retrieval.embeddings import Embedder
from retrieval.index import Index
from retrieval.tokens import count_tokens
from tests.agents.test_agent_llm import PROMPTS, Responder, _opening
from tests.agents.test_agent_offline import LIGHTHOUSE, assert_grounded, ingested_index
from tests.agents.test_llm import MESSAGES, VALID, Rating, closed_port
from tests.http_servers import ScriptedServer
from tests.openai_server import Reply, ScriptedOpenAI

MODEL_STAGES = ("expand", "rerank", "answer", "verify")
LONG = " ".join(f"word{i}" for i in range(400))


def bound(url: str, *, calls: int = 24, deadline_s: float = 60.0, **config: Any) -> OpenAIChatModel:
    """A model on ``url`` bound to fresh limits of one question."""
    settings = {"base_url": url, "model": "m", "backoff_s": 0.01, "timeout_s": 5.0, **config}
    return OpenAIChatModel(LLMConfig(**settings)).within(RunLimits(CallBudget(calls), deadline_s=deadline_s))


# --- a raw HTTP server for streams that stall or break -----------------------------------------------------


def _chunk(text: str) -> str:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    body["choices"] = [{"index": 0, "delta": {"content": text}, "finish_reason": None}]
    return f"data: {json.dumps(body)}\n\n"


class RawServer:
    """Sends a chunked event-stream reply made of ``events`` to every request: a str is sent as is, a float
    pauses that long, and ``None`` hangs up at once (no final chunk), as a crashing server would."""

    def __init__(self, events: list[str | float | None]) -> None:
        self.events = events
        self.requests = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.requests += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            try:
                conn.sendall(head)
                for event in self.events:
                    if event is None:
                        return
                    if isinstance(event, float):
                        if self._stop.wait(event):
                            return
                        continue
                    payload = event.encode()
                    conn.sendall(b"%x\r\n%s\r\n" % (len(payload), payload))
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the client gave up, which is what a stall is for


def dripping(pieces: int, every_s: float) -> list[str | float | None]:
    """A stream that sends one piece every ``every_s`` seconds."""
    events: list[str | float | None] = []
    for i in range(pieces):
        events += [_chunk(f"piece{i} "), every_s]
    return [*events, "data: [DONE]\n\n"]


BROKEN_STREAMS = {
    "dropped": [_chunk("The answer "), None],
    "garbage-event": [_chunk("The answer "), "data: {not json\n\n", "data: [DONE]\n\n"],
    "list-event": [_chunk("The answer "), "data: [1, 2]\n\n", "data: [DONE]\n\n"],
    "error-event": [_chunk("The answer "), 'data: {"error": {"message": "overloaded"}}\n\n'],
}


# --- the model client under one question's limits ----------------------------------------------------------


def test_the_budget_counts_retries_and_reasks_at_the_http_level():
    with ScriptedOpenAI([Reply(status=500)] * 5) as server:
        with pytest.raises(LLMError, match="after 2 attempts: LLM call budget of 2 spent"):
            bound(server.base_url, calls=2, max_retries=4).text(MESSAGES, stage="answer")
    assert len(server.requests) == 2
    with ScriptedOpenAI(["{not json", VALID]) as server:
        with pytest.raises(LLMError, match="budget of 1 spent"):
            bound(server.base_url, calls=1).structured(MESSAGES, Rating, stage="verify")
    assert len(server.requests) == 1


def test_each_timeout_is_cut_to_the_time_left_before_the_deadline():
    with ScriptedOpenAI([Reply("late", delay_s=3.0)] * 4) as server:
        model = bound(server.base_url, deadline_s=1.0, timeout_s=10.0, max_retries=3)
        started = time.monotonic()
        with pytest.raises(LLMError, match=r"deadline of 1 s passed") as caught:
            model.text(MESSAGES, stage="answer")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert len(server.requests) == 1
    assert "no reply" in str(caught.value)


def test_no_retry_starts_when_the_deadline_would_pass_first():
    wait = Reply(status=503, error="busy", headers={"retry-after": "5"})
    with ScriptedOpenAI([wait] * 4) as server:
        model = bound(server.base_url, deadline_s=2.0, max_retries=3)
        started = time.monotonic()
        with pytest.raises(LLMError, match="HTTP 503"):
            model.text(MESSAGES, stage="answer")
    assert time.monotonic() - started < 1.0
    assert len(server.requests) == 1


def test_a_refused_connection_marks_the_endpoint_down_for_the_question():
    model = bound(f"http://127.0.0.1:{closed_port()}/v1", max_retries=3, backoff_s=0.5)
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"connection refused \(1 attempt\)"):
        model.text(MESSAGES, stage="expand")
    with pytest.raises(LLMError, match="endpoint is down for this question"):
        model.text(MESSAGES, stage="answer")
    assert time.monotonic() - started < 0.5
    assert [r.attempts for r in model.ledger.records] == [1]


@pytest.mark.parametrize(
    "body",
    ["this is not json", [1, 2, 3], {"id": "x", "choices": []}, {"id": "x"}, {"choices": [{"text": "hi"}]}],
    ids=["not-json", "list", "no-choices", "no-choices-key", "no-message"],
)
def test_a_200_reply_that_is_not_a_chat_completion_is_an_llm_error(body):
    with ScriptedServer(lambda path, _: (200, body, 0.0), text_content_type="application/json") as server:
        with pytest.raises(LLMError, match="answered HTTP 200 but") as caught:
            bound(server.url).text(MESSAGES, stage="rerank")
    assert caught.value.status == 200 and not caught.value.retryable


@pytest.mark.parametrize("events", BROKEN_STREAMS.values(), ids=BROKEN_STREAMS.keys())
def test_a_broken_stream_is_an_llm_error_after_the_pieces_that_arrived(events):
    received: list[str] = []
    with RawServer(events) as server:
        with pytest.raises(LLMError) as caught:
            received.extend(bound(server.url).stream(MESSAGES, stage="answer"))
    assert received == ["The answer "]
    assert caught.value.stage == "answer" and server.url in str(caught.value)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([_chunk("first "), 30.0], "stalled: nothing for 1 s"),
        (dripping(pieces=40, every_s=0.5), "streaming when the deadline of 2.5 s passed"),
    ],
    ids=["silent", "dripping"],
)
def test_a_stalled_stream_ends_at_its_timeout_or_the_deadline(events, expected):
    with RawServer(events) as server:
        model = bound(server.url, timeout_s=1.0, deadline_s=2.5)
        started = time.monotonic()
        with pytest.raises(LLMError, match=expected):
            list(model.stream(MESSAGES, stage="answer"))
        elapsed = time.monotonic() - started
    assert elapsed < 3.2


def test_a_reply_that_drips_in_slowly_times_out_as_a_whole():
    with RawServer(dripping(pieces=40, every_s=0.4)) as server:
        model = bound(server.url, timeout_s=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(LLMError, match="timed out after 1 s"):
            model.text(MESSAGES, stage="expand")
    assert time.monotonic() - started < 2.0


def test_a_reply_longer_than_max_tokens_is_cut():
    with ScriptedOpenAI([Reply(LONG), Reply(LONG)]) as server:
        model = bound(server.base_url)
        streamed = "".join(model.stream(MESSAGES, stage="answer", max_tokens=50))
        returned = model.text(MESSAGES, stage="expand", max_tokens=50)
    for text in (streamed, returned):
        assert 40 <= count_tokens(text) <= 50
        assert LONG.startswith(text)


# --- whole questions ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Index:
    return ingested_index(tmp_path_factory.mktemp("limits-index"), embedder)


def ask_at(url: str, index: Index, home: Any, **overrides: Any) -> tuple[Answer, list[Any], Agent, float]:
    """Ask the lighthouse question of the model at ``url``; the answer, events, agent and seconds taken."""
    llm = {"base_url": url, "model": "m", "backoff_s": 0.01, "timeout_s": 5, **overrides.pop("llm", {})}
    agent = Agent(load_settings({"home": str(home), **overrides, "llm": llm}), index=index)
    started = time.monotonic()
    events = list(agent.stream(LIGHTHOUSE.question))
    elapsed = time.monotonic() - started
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert_grounded(answer, index)
    return answer, events, agent, elapsed


def reasons(answer: Answer, step: str) -> list[str]:
    return [why for entry in answer.trace if entry["step"] == step for why in entry["degraded"]]


def test_a_budget_of_two_sends_two_requests_however_many_retries_and_reasks(index, tmp_path):
    flaky = Responder(
        scripted={"rewrite": ["{not json", "{not json"], "query2doc": [Reply(status=500)] * 3},
    )
    with ScriptedOpenAI(flaky) as server:
        answer, _, agent, _ = ask_at(server.base_url, index, tmp_path, max_llm_calls=2)
    assert len(server.requests) == 2
    assert sum(record.attempts for record in agent.ledger.records) == 2
    for step in ("rerank", "answer", "verify"):
        assert any("budget of 2 spent" in why for why in reasons(answer, step)), step
    assert LIGHTHOUSE.phrase in answer.text


def test_after_the_deadline_the_remaining_stages_degrade_and_say_so(index, tmp_path):
    slow = Responder(always={prompt: Reply(status=500, delay_s=0.6) for prompt in PROMPTS})
    with ScriptedOpenAI(slow) as server:
        answer, _, _, elapsed = ask_at(
            server.base_url, index, tmp_path, deadline_s=1.0, llm={"max_retries": 5, "backoff_s": 0.2}
        )
    assert elapsed < 6.0
    for step in ("answer", "verify"):
        assert any("deadline of 1 s passed" in why for why in reasons(answer, step)), step
    assert LIGHTHOUSE.phrase in answer.text


def test_a_stalled_answer_stream_is_cut_at_the_deadline_and_the_answer_quotes_instead(index, tmp_path):
    only_answer = {"expand": {"enabled": False}, "rerank": {"enabled": False}, "verify": {"llm_judge": False}}
    with RawServer(dripping(pieces=100, every_s=1.0)) as server:
        answer, events, _, elapsed = ask_at(
            server.url, index, tmp_path, deadline_s=4.0, llm={"timeout_s": 3}, **only_answer
        )
    assert elapsed < 8.0
    assert any("deadline of 4 s passed" in why for why in reasons(answer, "answer"))
    assert any(isinstance(event, ResetEvent) for event in events)
    assert LIGHTHOUSE.phrase in answer.text


def test_a_dead_server_costs_one_connection_attempt_not_four_per_stage(index, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    answer, _, agent, elapsed = ask_at(url, index, tmp_path, llm={"max_retries": 3, "backoff_s": 0.5})
    assert elapsed < 5.0
    assert sum(record.attempts for record in agent.ledger.records) <= 2  # expand's two concurrent jobs
    for step in ("rerank", "answer", "verify"):
        assert any("endpoint is down for this question" in why for why in reasons(answer, step)), step
        assert any("connection refused" in why for why in reasons(answer, step)), step
    assert LIGHTHOUSE.phrase in answer.text


@pytest.mark.parametrize(
    "body",
    ["this is not json", [1, 2, 3], {"id": "x", "choices": []}],
    ids=["not-json", "list", "no-choices"],
)
def test_a_server_answering_200_garbage_degrades_every_stage(index, tmp_path, body):
    with ScriptedServer(lambda path, _: (200, body, 0.0), text_content_type="application/json") as server:
        answer, _, _, _ = ask_at(server.url, index, tmp_path)
    for step in MODEL_STAGES:
        assert reasons(answer, step), step
    assert LIGHTHOUSE.phrase in answer.text


@pytest.mark.parametrize("events", BROKEN_STREAMS.values(), ids=BROKEN_STREAMS.keys())
def test_a_broken_answer_stream_degrades_to_quotes(index, tmp_path, events):
    only_answer = {"expand": {"enabled": False}, "rerank": {"enabled": False}, "verify": {"llm_judge": False}}
    with RawServer(events) as server:
        answer, events_seen, _, _ = ask_at(server.url, index, tmp_path, **only_answer)
    (why,) = reasons(answer, "answer")
    assert why.startswith("answer generation failed") and why.endswith("quoted the passages instead")
    reset = next(i for i, e in enumerate(events_seen) if isinstance(e, ResetEvent))
    assert "".join(e.text for e in events_seen[reset:] if isinstance(e, TokenEvent)) == answer.text
    assert LIGHTHOUSE.phrase in answer.text


def test_an_answer_longer_than_max_tokens_is_cut(index, tmp_path):
    with ScriptedOpenAI(Responder(always={"answer": Reply(LONG)})) as server:
        _, events, _, _ = ask_at(
            server.base_url, index, tmp_path, answer={"max_tokens": 50}, verify={"retries": 0}
        )
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert streamed and count_tokens(streamed) <= 50 and LONG.startswith(streamed)


# --- strict mode -------------------------------------------------------------------------------------------


def _failing(prompt: str) -> Callable[[dict[str, Any]], Reply | str]:
    """A careful model, except that requests rendered from ``prompt`` get HTTP 500."""
    careful = Responder()
    opening = _opening(prompt)

    def respond(body: dict[str, Any]) -> Reply | str:
        if body["messages"][0]["content"].startswith(opening):
            return Reply(status=500, error=f"{prompt} is broken")
        return careful(body)

    return respond


@pytest.mark.parametrize(
    ("stage", "prompt", "overrides"),
    [
        ("expand", "rewrite", {}),
        ("route", "route_judge", {"route": {"llm_judge": True}}),
        ("rerank", "rerank_listwise", {}),
        ("answer", "answer", {}),
        ("verify", "verify", {}),
    ],
)
def test_strict_mode_raises_stage_degraded_from_every_stage(index, tmp_path, stage, prompt, overrides):
    with ScriptedOpenAI(_failing(prompt)) as server:
        settings = {"home": str(tmp_path), "strict": True, **overrides}
        settings["llm"] = {"base_url": server.base_url, "model": "m", "max_retries": 0}
        agent = Agent(load_settings(settings), index=index)
        with pytest.raises(StageDegradedError) as caught:
            list(agent.stream(LIGHTHOUSE.question))
    error = caught.value
    assert error.stage == stage and str(error).startswith(f"{stage}: ")
    assert isinstance(error.__cause__, LLMError) and error.__cause__.status == 500
    assert f"{prompt} is broken" in str(error) and "MULTIGRAIN_STRICT" in str(error)
