"""The ingest writer's turns: it calls Chroma (which holds Python's GIL throughout) only while the embedding
thread is off the GIL, and runs at the lowest CPU priority."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from retrieval.embeddings import pass_signal
from retrieval.turns import WriterTurns, lower_thread_priority

STUCK_S = 0.3
"""How long a writer that should be waiting is given to (wrongly) go ahead."""
DONE_S = 30.0
"""How long a writer that should go is given to finish: a writer still waiting by then never went."""


def _writer(turns: WriterTurns, in_pass: threading.Event | None) -> threading.Thread:
    thread = threading.Thread(target=turns.take, args=(in_pass,), daemon=True)
    thread.start()
    return thread


def test_the_writer_waits_while_the_embedding_thread_needs_the_lock_and_goes_when_a_pass_starts() -> None:
    in_pass = threading.Event()
    writer = _writer(WriterTurns(wait_s=60.0), in_pass)
    writer.join(STUCK_S)
    assert writer.is_alive()
    in_pass.set()
    writer.join(DONE_S)
    assert not writer.is_alive()


def test_the_writer_goes_when_the_embedding_thread_waits_for_it() -> None:
    turns = WriterTurns(wait_s=60.0)
    writer = _writer(turns, threading.Event())
    writer.join(STUCK_S)
    assert writer.is_alive()
    with turns.waiting():
        writer.join(DONE_S)
    assert not writer.is_alive()


def test_the_writer_goes_without_a_turn_after_its_longest_wait_or_at_once_for_a_model_elsewhere() -> None:
    bounded = _writer(WriterTurns(wait_s=0.05), threading.Event())
    elsewhere = _writer(WriterTurns(wait_s=60.0), None)
    bounded.join(DONE_S)
    elsewhere.join(DONE_S)
    assert not bounded.is_alive() and not elsewhere.is_alive()


def test_the_local_model_shows_each_pass_while_it_runs(embedder: Any) -> None:
    in_pass = pass_signal(embedder)
    assert in_pass is embedder.in_pass and not in_pass.is_set()
    texts = [f"Passage {i} about bees, lava and the waggle dance. " * 20 for i in range(64)]
    embedding = threading.Thread(target=embedder.embed_documents, args=(texts,), daemon=True)
    embedding.start()
    assert in_pass.wait(DONE_S)
    embedding.join(DONE_S)
    assert not in_pass.is_set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_the_writer_thread_runs_at_the_lowest_priority_and_leaves_the_others_as_they_were() -> None:
    seen: list[int] = []

    def writer() -> None:
        lower_thread_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
