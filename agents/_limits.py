"""One question's bounds on model requests: call budget, deadline, and whether the endpoint is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CallBudget", "RunLimits"]


@dataclass
class CallBudget:
    """A hard bound on the HTTP requests to the model for one question (retries and re-asks included)."""

    limit: int
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, calls: int = 1) -> bool:
        """Reserve calls; False (and nothing reserved) when that would pass the limit."""
        with self._lock:
            if self.used + calls > self.limit:
                return False
            self.used += calls
            return True

    @property
    def spent(self) -> bool:
        """Whether no call is left."""
        with self._lock:
            return self.used >= self.limit


class RunLimits:
    """What every model request of one question must respect; shared by all its stages and threads."""

    def __init__(
        self, budget: CallBudget, *, deadline_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.deadline_s = deadline_s
        self._clock = clock
        self._ends = clock() + deadline_s
        self._down: str | None = None
        self._lock = threading.Lock()

    def left_s(self) -> float:
        """Seconds until the deadline (0 once it has passed)."""
        return max(0.0, self._ends - self._clock())

    def refusal(self) -> str | None:
        """Why no request may be sent now, or None if one may (without reserving it)."""
        with self._lock:
            down = self._down
        if down is not None:
            return down
        if self.left_s() <= 0:
            return self.deadline_passed()
        if self.budget.spent:
            return self.budget_spent()
        return None

    def admit(self) -> str | None:
        """Reserve one request, or say why none may be sent."""
        refusal = self.refusal()
        if refusal is None and not self.budget.take():
            refusal = self.budget_spent()
        return refusal

    def timeout_s(self, timeout_s: float) -> float:
        """The timeout of the next request: the configured one, or less if the deadline comes first."""
        return max(min(timeout_s, self.left_s()), 0.001)

    def can_wait(self, seconds: float) -> bool:
        """Whether a retry after ``seconds`` would still start before the deadline."""
        return self.left_s() > seconds

    def mark_down(self, why: str) -> None:
        """Send no more requests for this question: the endpoint could not be reached (``why``)."""
        with self._lock:
            if self._down is None:
                self._down = f"the model endpoint is down for this question ({why})"

    def deadline_passed(self) -> str:
        """The reason given once the deadline has passed."""
        return f"deadline of {self.deadline_s:g} s passed (MULTIGRAIN_DEADLINE_S)"

    def budget_spent(self) -> str:
        """The reason given once the budget is used up."""
        return f"LLM call budget of {self.budget.limit} spent (MULTIGRAIN_MAX_LLM_CALLS)"
