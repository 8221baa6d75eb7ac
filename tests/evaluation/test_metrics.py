"""FORMAT.md's metrics, checked against values computed by hand on a three-document, four-query fixture."""

from __future__ import annotations

import random

import numpy as np
import pytest

from evaluation.datasets import Evidence, Query
from evaluation.metrics import (
    Passage,
    answer_contains,
    answer_hit_at_k,
    citation_evidence_recall,
    citation_precision,
    covers,
    doc_metrics,
    doc_recall_at_k,
    doc_recall_of_docs,
    evidence_recall_at_k,
    fact_recall,
    mean_defined,
    normalize,
    passage_metrics,
    percentile,
)
from retrieval.models import Unit

CAPITAL = Evidence("d1", "The capital of France is Paris.")  # 6 tokens: needs all 6 in a row
GREEK = Evidence("d2", "Alpha beta gamma delta epsilon zeta eta theta iota kappa.")  # 10 tokens: needs 5
LOREM = Evidence("d3", "Lorem ipsum dolor sit amet.")  # 5 tokens: needs all 5
NINE = Evidence("d9", "one two three four five six seven eight nine")  # 9 tokens: needs 5
EIGHT = Evidence("d9", "a1 a2 a3 a4 a5 a6 a7 a8")  # 8 tokens: needs 4
LONG_ANSWER = "A reference answer that runs well past eighty characters, so it is not a span to look for."

QUERIES = {
    "q1": Query("q1", "Capital of France?", ("Paris", "City of Light"), (CAPITAL,), frozenset({"d1"}), ()),
    "q2": Query("q2", "Are both Greek?", ("Yes",), (GREEK, LOREM), frozenset({"d2", "d3"}), ()),
    "q3": Query("q3", "Explain.", (LONG_ANSWER,), (Evidence("d3", ""),), frozenset({"d3"}), ()),
    "q4": Query("q4", "What number?", ("42",), (), frozenset({"d2"}), ("$1,200", "12.5%")),
}


def _filler(doc_id: str, count: int) -> list[Passage]:
    return [Passage(doc_id, "unrelated filler words") for _ in range(count)]


RANKED = {
    "q1": [
        Passage("d2", "The capital of France is Paris."),  # answer, but not the gold document
        Passage("d1", "The capital of France, they say, is Paris."),  # gold document, run broken
        *_filler("d3", 3),
        Passage("d1", "Indeed, THE  Capital of FRANCE is Paris!"),  # covers CAPITAL at rank 6
        *_filler("d3", 4),
    ],
    "q2": [
        Passage("d2", "yes x y alpha beta gamma delta epsilon w"),  # five in a row cover GREEK
        Passage("d3", "lorem ipsum dolor sit"),  # four of five: LOREM not covered
        Passage("d2", "alpha beta gamma delta"),
        Passage("d3", "Lorem ipsum dolor sit amet, consectetur."),  # covers LOREM at rank 4
        *_filler("d1", 6),
    ],
    "q3": [Passage("d1", LONG_ANSWER), Passage("d3", "anything"), *_filler("d2", 8)],
    "q4": [
        Passage("d1", "It cost 4200 dollars."),  # "42" only inside a longer number
        Passage("d3", "The answer: 42."),
        *_filler("d1", 8),
        Passage("d2", "gold document, but at rank 11"),
    ],
}

EXPECTED_AT_1_5_10 = {
    (doc_recall_at_k, "q1"): (0.0, 1.0, 1.0),
    (doc_recall_at_k, "q2"): (0.5, 1.0, 1.0),
    (doc_recall_at_k, "q3"): (0.0, 1.0, 1.0),
    (doc_recall_at_k, "q4"): (0.0, 0.0, 0.0),
    (evidence_recall_at_k, "q1"): (0.0, 0.0, 1.0),
    (evidence_recall_at_k, "q2"): (0.5, 1.0, 1.0),
    (evidence_recall_at_k, "q3"): (None, None, None),
    (evidence_recall_at_k, "q4"): (None, None, None),
    (answer_hit_at_k, "q1"): (1.0, 1.0, 1.0),
    (answer_hit_at_k, "q2"): (None, None, None),
    (answer_hit_at_k, "q3"): (None, None, None),
    (answer_hit_at_k, "q4"): (0.0, 1.0, 1.0),
}


@pytest.mark.parametrize(
    ("metric", "query_id", "expected"),
    [(metric, query_id, expected) for (metric, query_id), expected in EXPECTED_AT_1_5_10.items()],
    ids=[f"{metric.__name__}-{query_id}" for metric, query_id in EXPECTED_AT_1_5_10],
)
def test_per_query_metrics_at_1_5_10(metric, query_id, expected):
    values = tuple(metric(RANKED[query_id], QUERIES[query_id], k) for k in (1, 5, 10))
    assert values == pytest.approx(expected)


def test_passage_metrics_averages_over_the_queries_each_metric_applies_to():
    metrics = passage_metrics(RANKED, list(QUERIES.values()), prefix="hybrid/")

    assert metrics == pytest.approx(
        {
            "hybrid/doc_recall@1": 0.125,
            "hybrid/doc_recall@5": 0.75,
            "hybrid/doc_recall@10": 0.75,
            "hybrid/evidence_recall@1": 0.25,
            "hybrid/evidence_recall@5": 0.5,
            "hybrid/evidence_recall@10": 1.0,
            "hybrid/answer_hit@1": 0.5,
            "hybrid/answer_hit@5": 1.0,
            "hybrid/answer_hit@10": 1.0,
        }
    )


def test_passage_metrics_omits_a_metric_no_query_has():
    metrics = passage_metrics(RANKED, [QUERIES["q3"], QUERIES["q4"]], ks=(1, 5))

    assert metrics == pytest.approx(
        {"doc_recall@1": 0.0, "doc_recall@5": 0.5, "answer_hit@1": 0.0, "answer_hit@5": 1.0}
    )


def test_passage_metrics_counts_a_query_without_results_as_retrieving_nothing():
    assert passage_metrics({}, [QUERIES["q1"]], ks=(10,)) == {
        "doc_recall@10": 0.0,
        "evidence_recall@10": 0.0,
        "answer_hit@10": 0.0,
    }


def test_metrics_accept_retrieval_units():
    units = [
        Unit("u1", "d2", "sentence", GREEK.text, 0, len(GREEK.text)),
        Unit("u2", "d3", "sentence", LOREM.text, 0, len(LOREM.text)),
    ]
    assert evidence_recall_at_k(units, QUERIES["q2"], 1) == 0.5
    assert passage_metrics({"q2": units}, [QUERIES["q2"]], ks=(2,))["evidence_recall@2"] == 1.0


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_rejected(k):
    with pytest.raises(ValueError, match="k must be 1 or more"):
        doc_recall_at_k(RANKED["q1"], QUERIES["q1"], k)
    with pytest.raises(ValueError, match="k must be 1 or more"):
        passage_metrics(RANKED, list(QUERIES.values()), ks=(k, 5))


@pytest.mark.parametrize(("k", "expected"), [(1, 0.0), (2, 0.5), (3, 1.0), (10, 1.0)])
def test_doc_recall_of_routed_documents(k, expected):
    assert doc_recall_of_docs(["d1", "d3", "d2"], QUERIES["q2"], k) == expected


def test_doc_metrics_of_a_routing_stage():
    routed = {"q1": ["d1"], "q2": ["d3", "d2"], "q3": []}  # q4 routed nothing

    metrics = doc_metrics(routed, list(QUERIES.values()), ks=(1, 2), prefix="route/")

    assert metrics == pytest.approx({"route/doc_recall@1": 0.375, "route/doc_recall@2": 0.5})


def test_doc_recall_is_undefined_without_gold_documents():
    unjudged = Query("q9", "?", ("x",), (), frozenset(), ())
    assert doc_recall_at_k(RANKED["q1"], unjudged, 5) is None
    assert "doc_recall@5" not in passage_metrics(RANKED, [unjudged], ks=(5,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ﬁnance ﬂow", "finance flow"),
        ("Hello,  World!", "hello world"),
        ("  tabs\tand\nnew lines  ", "tabs and new lines"),
        ("ＡＢＣ１２３", "abc123"),
        ("l'été — «déjà»", "l été déjà"),
        ("~11,600 BP", "11 600 bp"),
        ("", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("passage_text", "doc_id", "item", "expected"),
    [
        ("so the capital of France is Paris, indeed", "d1", CAPITAL, True),
        ("capital of France is Paris", "d1", CAPITAL, False),  # short item: all tokens needed
        ("The capital of France is Paris.", "d2", CAPITAL, False),  # other document
        ("x delta epsilon zeta eta theta y", "d2", GREEK, True),  # 5 of 10 in a row
        ("x delta epsilon zeta eta y theta", "d2", GREEK, False),  # only 4 in a row
        ("alpha beta gamma delta x epsilon", "d2", GREEK, False),
        ("one two three four", "d9", NINE, False),
        ("five six seven eight nine", "d9", NINE, True),
        ("a5 a6 a7 a8", "d9", EIGHT, True),
        ("a6 a7 a8", "d9", EIGHT, False),
        ("THE FINAL FIGURE WAS HIGH", "d9", Evidence("d9", "The ﬁnal ﬁgure was high."), True),
        ("anything at all", "d3", Evidence("d3", ""), False),  # document-level evidence
    ],
)
def test_covers(passage_text, doc_id, item, expected):
    assert covers(passage_text, doc_id, item) is expected


@pytest.mark.parametrize(("run", "expected"), [(15, True), (14, False)])
def test_covers_a_thirty_token_item_in_a_two_hundred_token_passage(run, expected):
    item_tokens = [f"item{i}" for i in range(30)]
    passage_tokens = [f"word{i}" for i in range(200)]
    passage_tokens[100 : 100 + run] = item_tokens[7 : 7 + run]
    passage_tokens[20:34] = item_tokens[:14]  # a second, shorter run must not add up with the first

    assert covers(" ".join(passage_tokens), "d", Evidence("d", " ".join(item_tokens))) is expected


@pytest.mark.parametrize(
    ("query_id", "answer", "expected"),
    [
        ("q1", "The answer is Paris.", 1.0),
        ("q1", "They call it the city of light.", 1.0),
        ("q1", "Parisian cafés", 0.0),
        ("q1", "", 0.0),
        ("q2", "Yes, both are.", 1.0),
        ("q2", "Not at all.", 0.0),
        ("q3", LONG_ANSWER, None),
        ("q4", "It is 42.", 1.0),
        ("q4", "It is 420.", 0.0),
    ],
)
def test_answer_contains(query_id, answer, expected):
    assert answer_contains(answer, QUERIES[query_id]) == expected


@pytest.mark.parametrize(
    ("query_id", "cited_docs", "expected"),
    [("q1", ["d1", "d2"], 0.5), ("q2", ["d2", "d3", "d3"], 1.0), ("q4", ["d1"], 0.0), ("q1", [], None)],
)
def test_citation_precision(query_id, cited_docs, expected):
    cited = [Passage(doc_id, "text") for doc_id in cited_docs]
    assert citation_precision(cited, QUERIES[query_id]) == expected


@pytest.mark.parametrize(
    ("query_id", "cited", "expected"),
    [
        ("q2", [Passage("d2", "alpha beta gamma delta epsilon"), Passage("d1", LOREM.text)], 0.5),
        ("q2", [Passage("d3", LOREM.text), Passage("d2", GREEK.text)], 1.0),
        ("q2", [], 0.0),
        ("q1", [Passage("d1", "the capital of france is paris")], 1.0),
        ("q3", [Passage("d3", "anything")], None),
    ],
)
def test_citation_evidence_recall(query_id, cited, expected):
    assert citation_evidence_recall(cited, QUERIES[query_id]) == expected


@pytest.mark.parametrize(
    ("query_id", "answer", "expected"),
    [
        ("q4", "Revenue was 1200 dollars, up 12.5 percent.", 1.0),
        ("q4", "Revenue was $1,200.", 0.5),
        ("q4", "Revenue was $12,000, up 12.50%.", 0.0),
        ("q1", "Paris", None),
    ],
)
def test_fact_recall(query_id, answer, expected):
    assert fact_recall(answer, QUERIES[query_id]) == expected


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 95, 3.85),
        ([4, 1, 3, 2], 0, 1.0),
        ([4, 1, 3, 2], 100, 4.0),
        ([7.0], 95, 7.0),
    ],
)
def test_percentile(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_matches_numpy_linear_interpolation():
    rng = random.Random(5)
    values = [rng.uniform(0, 3) for _ in range(37)]
    for p in (5, 50, 95, 99):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


@pytest.mark.parametrize(("values", "p"), [([], 50), ([1.0], 101), ([1.0], -1)])
def test_percentile_rejects_bad_input(values, p):
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, p)


@pytest.mark.parametrize(
    ("values", "expected"), [([None, 1.0, 0.0], 0.5), ([0.25], 0.25), ([None], None), ([], None)]
)
def test_mean_defined(values, expected):
    assert mean_defined(values) == expected
