from __future__ import annotations

import hashlib
import random
import re
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from retrieval.config import EmbeddingConfig
from retrieval.embeddings import (
    Embedder,
    OnnxEmbedder,
    OpenAIEmbedder,
    make_embedder,
)
from retrieval.errors import ConfigError, RetrievalError
from tests.http_servers import ScriptedServer

FAKE_DIM = 16
FAKE_MODEL = "fake-embed-v1"

TEXTS_OF_MIXED_LENGTH = [
    "Photosynthesis turns light into chemical energy. " * 40,
    "Tax.",
    "The harbour froze over during the long winter of 1709.",
    "",
    "A recipe for sourdough bread needs flour, water, salt and a starter culture. " * 5,
    "Quarterly revenue grew by 5 percent.",
]


def _config(**fields: Any) -> EmbeddingConfig:
    return EmbeddingConfig.model_validate(fields)


def _fake_vector(text: str) -> list[float]:
    """Hashed bag of words, deliberately not unit length; a constant slot keeps empty text non-zero."""
    vector = [0.0] * FAKE_DIM
    vector[0] = 0.5
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        vector[1 + digest[0] % (FAKE_DIM - 1)] += 3.0 if digest[1] % 2 else -3.0
    return vector


def _unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def _embeddings_endpoint(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    if path != "/v1/embeddings":
        return 404, {"error": {"message": f"no route {path}"}}, 0.0
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    rows = [
        {"object": "embedding", "index": index, "embedding": _fake_vector(text)}
        for index, text in enumerate(inputs)
    ]
    random.Random(len(inputs)).shuffle(rows)
    words = sum(len(text.split()) + 1 for text in inputs)
    usage = {"prompt_tokens": words, "total_tokens": words}
    return 200, {"object": "list", "data": rows, "model": body["model"], "usage": usage}, 0.0


@pytest.fixture
def embeddings_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(_embeddings_endpoint) as server:
        yield server


def _openai_embedder(url: str, *, batch_size: int = 3) -> OpenAIEmbedder:
    config = _config(backend="openai", model=FAKE_MODEL, base_url=url, batch_size=batch_size)
    return OpenAIEmbedder(config)


@pytest.fixture(params=["onnx", "openai"])
def any_embedder(request: pytest.FixtureRequest, embedder: OnnxEmbedder) -> Iterator[Embedder]:
    if request.param == "onnx":
        yield embedder
        return
    with ScriptedServer(_embeddings_endpoint) as server:
        yield _openai_embedder(server.url)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- contract: every backend ---------------------------------------------------------------------------


def test_rows_are_float32_unit_vectors(any_embedder: Embedder) -> None:
    vectors = any_embedder.embed_documents(TEXTS_OF_MIXED_LENGTH)

    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS_OF_MIXED_LENGTH), any_embedder.dim)
    assert any_embedder.dim > 0
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_rows_keep_input_order_across_lengths(any_embedder: Embedder) -> None:
    together = any_embedder.embed_documents(TEXTS_OF_MIXED_LENGTH)
    one_by_one = np.stack([any_embedder.embed_documents([text])[0] for text in TEXTS_OF_MIXED_LENGTH])

    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    assert np.all(together @ together.T - np.eye(len(together)) < 0.99), "test texts must be distinguishable"


def test_query_vector_equals_its_document_row(any_embedder: Embedder) -> None:
    query = "When did the harbour freeze?"

    vector = any_embedder.embed_query(query)

    assert vector.shape == (any_embedder.dim,)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, any_embedder.embed_documents([query])[0], atol=1e-5)


def test_empty_input_gives_empty_matrix_and_no_call(any_embedder: Embedder) -> None:
    calls_before = any_embedder.stats.calls

    vectors = any_embedder.embed_documents([])

    assert vectors.shape == (0, any_embedder.dim)
    assert vectors.dtype == np.float32
    assert any_embedder.stats.calls == calls_before


def test_stats_count_each_call_and_its_texts(any_embedder: Embedder) -> None:
    before = (any_embedder.stats.calls, any_embedder.stats.texts, any_embedder.stats.tokens)

    any_embedder.embed_documents(TEXTS_OF_MIXED_LENGTH)
    any_embedder.embed_query("one more")

    assert any_embedder.stats.calls - before[0] == 2
    assert any_embedder.stats.texts - before[1] == len(TEXTS_OF_MIXED_LENGTH) + 1
    assert any_embedder.stats.tokens - before[2] > len(TEXTS_OF_MIXED_LENGTH)


# --- the local ONNX model ------------------------------------------------------------------------------


def _cosine(embedder: Embedder, first: str, second: str) -> float:
    vectors = embedder.embed_documents([first, second])
    return float(vectors[0] @ vectors[1])


def test_onnx_ranks_paraphrase_above_unrelated_text(embedder: OnnxEmbedder) -> None:
    anchor = "A cat sits on the mat"

    paraphrase = _cosine(embedder, anchor, "A kitten is sitting on a rug")
    unrelated = _cosine(embedder, anchor, "Quarterly revenue grew by 5 percent")

    assert paraphrase > 0.5
    assert paraphrase - unrelated > 0.4


@pytest.mark.parametrize(
    ("first", "second", "reference"),
    [
        ("The weather is lovely today.", "It's so sunny outside!", 0.6660),
        ("The weather is lovely today.", "He drove to the stadium.", 0.1046),
        ("It's so sunny outside!", "He drove to the stadium.", 0.1411),
    ],
)
def test_onnx_matches_sentence_transformers_reference(
    embedder: OnnxEmbedder, first: str, second: str, reference: float
) -> None:
    # Reference: SentenceTransformer("all-MiniLM-L6-v2") similarities printed at
    # https://sbert.net/docs/sentence_transformer/usage/usage.html;
    # int8 weights move them by a few thousandths.
    assert _cosine(embedder, first, second) == pytest.approx(reference, abs=0.02)


def test_onnx_identifies_its_model(embedder: OnnxEmbedder) -> None:
    assert embedder.model_id == "all-MiniLM-L6-v2-onnx-int8"
    assert embedder.dim == 384


def test_onnx_small_batches_give_the_same_vectors(embedder: OnnxEmbedder) -> None:
    small_batches = OnnxEmbedder(_config(batch_size=2))

    np.testing.assert_allclose(
        small_batches.embed_documents(TEXTS_OF_MIXED_LENGTH),
        embedder.embed_documents(TEXTS_OF_MIXED_LENGTH),
        atol=1e-4,
    )
    assert small_batches._session is embedder._session, "the ONNX session must load once per process"


def test_onnx_reads_at_most_max_tokens_word_pieces() -> None:
    short_reader = OnnxEmbedder(_config(max_tokens=32))
    long_text = "alpha beta gamma delta " * 100
    same_start = long_text + "completely different ending about tax law " * 50

    assert short_reader.count_tokens(["alpha beta", long_text]) == [4, 32]
    np.testing.assert_allclose(
        short_reader.embed_query(long_text), short_reader.embed_query(same_start), atol=1e-6
    )
    short_reader.embed_documents([long_text])
    assert short_reader.stats.tokens == 32 * 3


# --- the OpenAI-compatible client ------------------------------------------------------------------------


def test_openai_sends_batches_with_model_name(embeddings_server: ScriptedServer) -> None:
    texts = [f"text number {i}" for i in range(7)]

    _openai_embedder(embeddings_server.url, batch_size=3).embed_documents(texts)

    assert embeddings_server.paths == ["/v1/embeddings"] * 3
    sent = [request["json"] for request in embeddings_server.requests]
    assert [body["input"] for body in sent] == [texts[0:3], texts[3:6], texts[6:7]]
    assert {body["model"] for body in sent} == {FAKE_MODEL}
    assert embeddings_server.requests[0]["headers"]["authorization"] == "Bearer not-needed"


def test_openai_rows_follow_inputs_despite_shuffled_response(embeddings_server: ScriptedServer) -> None:
    texts = ["red apples", "green pears and plums", "blue sky over the sea", "yellow", "black cat at night"]
    client = _openai_embedder(embeddings_server.url, batch_size=5)
    assert client.dim == 0

    vectors = client.embed_documents(texts)

    np.testing.assert_allclose(vectors, np.stack([_unit(_fake_vector(text)) for text in texts]), atol=1e-6)
    assert client.dim == FAKE_DIM
    assert client.model_id == f"openai:{FAKE_MODEL}"
    assert client.stats.tokens == sum(len(text.split()) + 1 for text in texts)


def test_openai_sends_the_configured_key(embeddings_server: ScriptedServer) -> None:
    config = _config(backend="openai", base_url=embeddings_server.url, api_key=SecretStr("sk-test"))

    make_embedder(config).embed_query("hello")

    assert embeddings_server.requests[0]["headers"]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(("status", "attempts"), [(400, 1), (500, 3)])
def test_openai_http_error_names_url_and_status(status: int, attempts: int) -> None:
    def failing(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        return status, {"error": {"message": "model is loading"}}, 0.0

    with ScriptedServer(failing) as server:
        client = _openai_embedder(server.url)
        with pytest.raises(RetrievalError) as caught:
            client.embed_documents(["anything"])

    message = str(caught.value)
    assert f"{server.url}/embeddings" in message
    assert f"HTTP {status}" in message
    assert "model is loading" in message
    assert len(server.requests) == attempts
    assert client.stats.calls == 0


def test_openai_unreachable_server_names_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"

    with pytest.raises(RetrievalError, match=re.escape(f"{url}/embeddings failed: Connection error")):
        _openai_embedder(url).embed_query("anything")


def test_a_key_in_the_base_url_is_masked_in_errors() -> None:
    port = _free_port()
    with pytest.raises(RetrievalError) as caught:
        _openai_embedder(f"http://user:sk-secret-key@127.0.0.1:{port}/v1?api_key=sk-other").embed_query("x")
    assert f"http://user:***@127.0.0.1:{port}/v1" in str(caught.value)
    assert "sk-secret-key" not in str(caught.value) and "sk-other" not in str(caught.value)


def test_openai_missing_rows_raise(embeddings_server: ScriptedServer) -> None:
    def one_row_short(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        status, reply, delay = _embeddings_endpoint(path, body)
        reply["data"] = [row for row in reply["data"] if row["index"] != 1]
        return status, reply, delay

    embeddings_server.handler = one_row_short

    with pytest.raises(RetrievalError, match=r"has rows \[0, 2\] for 3 inputs"):
        _openai_embedder(embeddings_server.url).embed_documents(["a", "b", "c"])


# --- choosing a backend ----------------------------------------------------------------------------------


def test_make_embedder_builds_the_named_backend() -> None:
    assert isinstance(make_embedder(_config()), OnnxEmbedder)
    remote = make_embedder(_config(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.model_id == "openai:m"
    keyed = make_embedder(_config(backend="openai", api_key=SecretStr("k")))
    assert isinstance(keyed, OpenAIEmbedder)


def test_make_embedder_refuses_openai_without_url_or_key() -> None:
    with pytest.raises(
        ConfigError, match="MULTIGRAIN_INDEX__EMBEDDING__BASE_URL or MULTIGRAIN_INDEX__EMBEDDING__API_KEY"
    ):
        make_embedder(_config(backend="openai"))
