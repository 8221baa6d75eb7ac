"""When the ingest's writer thread may use the CPU and Python's lock, so that the model never waits for it.

Chroma holds Python's GIL for the whole of each call (a batch's upsert: 0.1-0.3 s). A call made while the
embedding thread tokenises a batch or pools its spans stalls the model for that long: on nih-protocols, the
embedding thread's work before each batch's first pass took 3.7-4.6 s in all instead of 0.6. So the writer
takes its turn while the embedding thread is off the GIL: inside a model pass (onnxruntime releases the
GIL), or waiting for the writer itself. And it runs at the lowest CPU priority, so that in those turns it
uses the cores the model's threads leave idle rather than the ones they wait for.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

TURN_WAIT_S = 2.0
"""The longest a Chroma call waits for its turn: a little over one model pass of a full batch."""
_POLL_S = 0.02


class WriterTurns:
    """Turns for the writer thread's Chroma calls, given by the embedding thread's passes and waits."""

    def __init__(self, *, wait_s: float = TURN_WAIT_S) -> None:
        self._waiting = threading.Event()
        self._wait_s = wait_s

    def take(self, in_pass: threading.Event | None) -> None:
        """Block the writer until the embedding thread is off the GIL, or for ``wait_s`` at most.

        ``in_pass`` is set while the model runs a pass; None for a model elsewhere (the writer never waits).
        """
        if in_pass is None:
            return
        deadline = time.monotonic() + self._wait_s
        while not (in_pass.is_set() or self._waiting.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            in_pass.wait(min(_POLL_S, left))

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """The embedding thread waits for the writer inside this block: every turn is the writer's."""
        self._waiting.set()
        try:
            yield
        finally:
            self._waiting.clear()


def lower_thread_priority() -> None:
    """Run the calling thread at the lowest CPU priority (nice 19), on Linux, where each thread has one.

    Meant for a thread of its own (the writer's), started before it starts others: threads inherit it.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
