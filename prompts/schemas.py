"""The replies the model must fill: pydantic models whose field descriptions are written for the model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "DocumentChoice",
    "Judgement",
    "Judgements",
    "Rewrites",
    "Standalone",
    "Verdict",
    "WindowJudgement",
]

Verdict = Literal["supported", "partial", "unsupported"]
"""How well the cited sources state a sentence."""


class Rewrites(BaseModel):
    """Alternative phrasings of a question."""

    rewrites: list[str] = Field(description="Each a full, standalone search query with different wording.")


class Standalone(BaseModel):
    """A follow-up question made self-contained."""

    question: str = Field(
        description="The question rewritten so it can be understood without the conversation."
    )


class DocumentChoice(BaseModel):
    """The judge's choice among candidate documents."""

    documents: list[int] = Field(
        description="Numbers of the documents likely to contain the answer, best first."
    )


class WindowJudgement(BaseModel):
    """The model's judgement of one window of passages."""

    ranking: list[int] = Field(description="Passage numbers from most to least useful for answering.")


class Judgement(BaseModel):
    """The model's verdict on one claim."""

    index: int = Field(description="The claim's number, exactly as it appears in the list of claims.")
    verdict: Verdict = Field(
        description="'supported': the cited sources state all of it; 'partial': they state only part of it; "
        "'unsupported': they do not state it or they contradict it."
    )
    reason: str = Field(description="One short sentence naming the words of the sources that decide it.")


class Judgements(BaseModel):
    """The model's verdicts on a list of claims."""

    judgements: list[Judgement] = Field(description="One judgement per claim, in the order of the claims.")
