"""The nodes' max_tokens budgets are named and keep the figures they had as inline formulas."""

from __future__ import annotations

import pytest

from agents.llm import ReplyBudget
from agents.nodes import expand, rerank, route, verify


def test_a_reply_budget_is_a_fixed_part_plus_a_share_per_item():
    assert ReplyBudget(fixed=40, per_item=60).tokens(0) == 40
    assert ReplyBudget(fixed=40, per_item=60).tokens(3) == 220


@pytest.mark.parametrize(
    ("budget", "items", "tokens"),
    [
        (expand.REWRITES_REPLY, 3, 40 + 60 * 3),
        (rerank.RANKING_REPLY, 10, 32 + 8 * 10),
        (route.CHOICE_REPLY, 10, 16 + 6 * 10),
        (verify.JUDGEMENTS_REPLY, 4, 60 + 80 * 4),
    ],
)
def test_node_budgets_keep_their_figures(budget, items, tokens):
    assert budget.tokens(items) == tokens


def test_single_replies_and_route_figures_keep_their_values():
    assert (expand.STANDALONE_MAX_TOKENS, expand.PSEUDO_DOC_MAX_TOKENS) == (200, 200)
    assert (route.JUDGE_CANDIDATES, route.NEAR_MISSES, route.CONFIDENCE_SCALE) == (10, 10, 10)
    assert route._confidence([1.0, 0.95, 0.5], 2) == 1.0
    assert route._confidence([1.0, 0.98, 0.96], 2) == pytest.approx(0.2)
