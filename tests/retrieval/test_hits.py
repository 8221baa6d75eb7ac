"""A chunk hit and the passage the graph state carries are one set of fields, converted in one place."""

from __future__ import annotations

from dataclasses import fields, replace

from retrieval.hits import ChunkHit, Passage, hit_from_passage, passage_from_hit

HIT = ChunkHit(
    chunk_id="notes.md#c4",
    doc_id="notes.md",
    title="Notes",
    text="The audit found the inventory short.",
    start=120,
    end=156,
    section="Audit > 2023",
    page=3,
    ordinal=4,
    score=0.25,
)


def test_a_passage_holds_every_field_of_a_hit_but_its_ordinal():
    assert set(Passage.__annotations__) == {f.name for f in fields(ChunkHit)} - {"ordinal"}


def test_a_hit_survives_the_trip_through_a_passage_but_for_its_ordinal():
    passage = passage_from_hit(HIT, 0.75)

    assert passage["score"] == 0.75 and passage["page"] == 3
    assert hit_from_passage(passage) == replace(HIT, ordinal=0, score=0.75)
