"""``multigrain eval`` reports how often the agent declines unanswerable queries and answers the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evaluation.datasets import Query, load_dataset
from evaluation.metrics import answered_share, declined_share
from evaluation.runner import QueryOutcome, agent_metrics

ANSWERABLE = Query("q1", "Capital of France?", ("Paris",), (), frozenset({"d1"}), ())
UNANSWERABLE = Query("q2", "Capital of Atlantis?", (), (), frozenset(), (), unanswerable=True)


def outcome(query: Query, text: str, *, declined: bool = False, error: str | None = None) -> QueryOutcome:
    return QueryOutcome(query.query_id, text, [], [], [], [], [], 0.1, {}, 0, 0, error, declined)


def test_unanswerable_queries_are_read_from_metadata_type(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "x"}) + "\n")
    lines: list[dict[str, Any]] = [
        {"_id": "a", "text": "Q?", "answers": ["x"], "metadata": {"type": "narrative"}},
        {"_id": "b", "text": "Q?", "answers": [], "metadata": {"type": "unanswerable"}},
        {"_id": "c", "text": "Q?", "answers": []},
    ]
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"{q['_id']}\td1\t1\n" for q in lines)
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    queries = load_dataset(tmp_path).queries
    assert [q.unanswerable for q in queries] == [False, True, False]


def test_declined_share_counts_only_unanswerable_and_answered_share_only_the_others() -> None:
    assert declined_share(True, UNANSWERABLE) == 1.0
    assert declined_share(False, UNANSWERABLE) == 0.0
    assert declined_share(True, ANSWERABLE) is None
    assert answered_share(True, ANSWERABLE) == 1.0
    assert answered_share(False, ANSWERABLE) == 0.0
    assert answered_share(True, UNANSWERABLE) is None


def test_agent_metrics_report_declined_and_answered_shares() -> None:
    other = Query("q3", "Capital of Spain?", ("Madrid",), (), frozenset({"d2"}), ())
    outcomes = [
        outcome(ANSWERABLE, "Paris is the capital [1]."),
        outcome(UNANSWERABLE, "The documents do not answer this question.", declined=True),
        outcome(other, "", error="timed out"),
    ]
    metrics = agent_metrics(outcomes, [ANSWERABLE, UNANSWERABLE, other], route_enabled=False)

    assert metrics["declined_share"] == 1.0
    assert metrics["answered_share"] == 0.5


def test_a_declined_answer_is_not_an_answer() -> None:
    assert not outcome(ANSWERABLE, "The documents do not answer this question.", declined=True).answered
    assert outcome(ANSWERABLE, "Paris [1].").answered
