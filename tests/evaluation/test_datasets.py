"""Reading dataset folders: what a well-formed one yields, and errors that point at the file and line."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from evaluation.datasets import (
    CorpusEntry,
    Dataset,
    Evidence,
    list_doc_files,
    load_dataset,
    read_corpus,
    sample_queries,
)
from evaluation.errors import DatasetError

CORPUS = [
    {"_id": "d1", "title": "France", "text": "The capital of France is Paris."},
    {"_id": "d2", "title": "Greek", "text": "Alpha beta gamma delta epsilon zeta eta theta iota kappa."},
    {"_id": "d3", "title": "Lorem", "text": "Lorem ipsum dolor sit amet."},
]
QUERIES = [
    {
        "_id": "q1",
        "text": "Capital of France?",
        "answers": ["Paris"],
        "evidence": [{"doc_id": "d1", "text": "The capital of France is Paris."}],
    },
    {
        "_id": "q2",
        "text": "Are both Greek?",
        "answers": ["yes"],
        "evidence": [{"doc_id": "d2", "text": "Alpha beta gamma."}, {"doc_id": "d3", "text": "Lorem ipsum."}],
        "metadata": {"type": "comparison"},
    },
    {"_id": "q3", "text": "Explain.", "answers": [], "evidence": [{"doc_id": "d3", "text": ""}]},
    {"_id": 4, "text": "What number?", "answers": ["42"], "metadata": {"facts": ["$1,200", 12.5]}},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\td1\t2\n4\td2\t1\n4\td1\t0\n"


def _write_jsonl(path: Path, records: Sequence[object]) -> None:
    lines = (record if isinstance(record, str) else json.dumps(record) for record in records)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny-set"
    (root / "qrels").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"name": "tiny", "license": "CC0"}), encoding="utf-8")
    _write_jsonl(root / "corpus.jsonl", CORPUS)
    _write_jsonl(root / "queries.jsonl", QUERIES)
    (root / "qrels" / "test.tsv").write_text(QRELS, encoding="utf-8")
    return root


def test_load_dataset_reads_queries_in_file_order(dataset_dir):
    dataset = load_dataset(dataset_dir)

    assert dataset.name == "tiny"
    assert dataset.root == dataset_dir
    assert dataset.corpus_path == dataset_dir / "corpus.jsonl"
    assert dataset.docs_dir is None
    assert [query.query_id for query in dataset.queries] == ["q1", "q2", "q3", "4"]
    q1, q2, q3, q4 = dataset.queries
    assert (q1.text, q1.answers, q1.facts) == ("Capital of France?", ("Paris",), ())
    assert q2.evidence == (Evidence("d2", "Alpha beta gamma."), Evidence("d3", "Lorem ipsum."))
    assert q3.evidence == (Evidence("d3", ""),)
    assert q4.facts == ("$1,200", "12.5")


def test_gold_documents_join_positive_qrels_and_evidence(dataset_dir):
    gold = {query.query_id: query.gold_doc_ids for query in load_dataset(dataset_dir).queries}

    assert gold == {"q1": {"d1"}, "q2": {"d2", "d3"}, "q3": {"d1", "d3"}, "4": {"d2"}}


def test_qrels_are_optional_when_evidence_names_the_documents(dataset_dir):
    (dataset_dir / "qrels" / "test.tsv").unlink()
    _write_jsonl(dataset_dir / "queries.jsonl", QUERIES[:3])

    gold = {query.query_id: query.gold_doc_ids for query in load_dataset(dataset_dir).queries}

    assert gold == {"q1": {"d1"}, "q2": {"d2", "d3"}, "q3": {"d3"}}


def test_without_qrels_a_query_without_evidence_documents_is_an_error(dataset_dir):
    (dataset_dir / "qrels" / "test.tsv").unlink()

    with pytest.raises(DatasetError, match=r"queries\.jsonl line 4: query '4' names no evidence document"):
        load_dataset(dataset_dir)


@pytest.mark.parametrize("manifest", [None, {"license": "CC0"}])
def test_name_falls_back_to_the_folder_name(dataset_dir, manifest):
    path = dataset_dir / "dataset.json"
    if manifest is None:
        path.unlink()
    else:
        path.write_text(json.dumps(manifest), encoding="utf-8")

    assert load_dataset(dataset_dir).name == "tiny-set"


def test_read_corpus_yields_every_document(dataset_dir):
    entries = list(read_corpus(load_dataset(dataset_dir)))

    assert entries == [CorpusEntry(doc["_id"], doc["title"], doc["text"]) for doc in CORPUS]


def test_read_corpus_names_the_malformed_line(dataset_dir):
    dataset = load_dataset(dataset_dir)
    _write_jsonl(dataset_dir / "corpus.jsonl", [CORPUS[0], {"title": "no id", "text": "x"}])

    with pytest.raises(DatasetError, match=r"corpus\.jsonl line 2: missing '_id'"):
        list(read_corpus(dataset))


def test_docs_folder_dataset_uses_relative_paths_as_ids(tmp_path):
    root = tmp_path / "reports"
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# A\nRevenue was $1,200.", encoding="utf-8")
    (root / "docs" / "sub" / "b.txt").write_text("B", encoding="utf-8")
    (root / "docs" / ".DS_Store").write_text("", encoding="utf-8")
    query = {"_id": "r1", "text": "Revenue?", "evidence": [{"doc_id": "docs/a.md", "text": ""}]}
    _write_jsonl(root / "queries.jsonl", [query])

    dataset = load_dataset(root)

    assert (dataset.name, dataset.corpus_path, dataset.docs_dir) == ("reports", None, root / "docs")
    assert dataset.queries[0].gold_doc_ids == {"docs/a.md"}
    assert list_doc_files(dataset) == [
        ("docs/a.md", root / "docs" / "a.md"),
        ("docs/sub/b.txt", root / "docs" / "sub" / "b.txt"),
    ]
    with pytest.raises(DatasetError, match="use list_doc_files"):
        next(read_corpus(dataset))


def test_list_doc_files_of_a_corpus_dataset_is_an_error(dataset_dir):
    with pytest.raises(DatasetError, match="use read_corpus"):
        list_doc_files(load_dataset(dataset_dir))


GOOD = json.dumps(QUERIES[0])


@pytest.mark.parametrize(
    ("file", "lines", "message"),
    [
        (
            "queries.jsonl",
            [GOOD, "", '{"_id": "q3" "text": "x"}'],
            "queries.jsonl line 3: invalid JSON (Expecting ',' delimiter",
        ),
        ("queries.jsonl", [GOOD, '{"_id": "q2", "answers": []}'], "queries.jsonl line 2: missing 'text'"),
        ("queries.jsonl", ['["not", "an object"]'], "queries.jsonl line 1: expected a JSON object"),
        (
            "queries.jsonl",
            [GOOD, '{"_id": "q2", "text": "?", "evidence": [{"text": "span"}]}'],
            "queries.jsonl line 2: evidence[0]: missing 'doc_id'",
        ),
        (
            "queries.jsonl",
            ['{"_id": "q1", "text": "?", "answers": "Paris"}'],
            "queries.jsonl line 1: 'answers' must be a list",
        ),
        (
            "queries.jsonl",
            [GOOD, json.dumps(QUERIES[1]), GOOD],
            "queries.jsonl line 3: duplicate query id 'q1' (first on line 1)",
        ),
        (
            "queries.jsonl",
            ['{"_id": "q1", "text": "?", "metadata": {"facts": [{"x": 1}]}}'],
            "queries.jsonl line 1: 'metadata.facts' must be a list of strings or numbers",
        ),
        (
            "qrels/test.tsv",
            ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2"],
            "qrels/test.tsv line 3: expected 3 tab-separated columns (query-id, corpus-id, score), found 2",
        ),
        (
            "qrels/test.tsv",
            ["query-id\tcorpus-id\tscore", "q1\td1\thigh"],
            "qrels/test.tsv line 2: score 'high' is not a number",
        ),
        ("dataset.json", ['{"name": "tiny",', "}"], "dataset.json line 2: invalid JSON"),
    ],
)
def test_malformed_file_error_names_file_and_line(dataset_dir, file, lines, message):
    (dataset_dir / file).write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=re.escape(message)) as raised:
        load_dataset(dataset_dir)

    assert str(dataset_dir / file) in str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root: (root / "queries.jsonl").unlink(), "queries.jsonl is missing"),
        (lambda root: (root / "corpus.jsonl").unlink(), "has neither corpus.jsonl nor docs/"),
        (lambda root: (root / "docs").mkdir(), "has both corpus.jsonl and docs/"),
    ],
    ids=["no-queries", "no-documents", "two-document-sources"],
)
def test_incomplete_dataset_folder_is_an_error(dataset_dir, change, message):
    change(dataset_dir)

    with pytest.raises(DatasetError, match=re.escape(message)):
        load_dataset(dataset_dir)


def test_a_path_that_is_not_a_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset folder"):
        load_dataset(tmp_path / "missing")


@pytest.fixture
def forty_queries(tmp_path: Path) -> Dataset:
    root = tmp_path / "forty"
    root.mkdir()
    _write_jsonl(root / "corpus.jsonl", CORPUS)
    evidence = [{"doc_id": "d1", "text": ""}]
    _write_jsonl(
        root / "queries.jsonl",
        [{"_id": f"q{i:02d}", "text": f"q {i}", "evidence": evidence} for i in range(40)],
    )
    return load_dataset(root)


def test_sample_is_seeded_and_keeps_dataset_order(forty_queries):
    sample = sample_queries(forty_queries, 10)
    ids = [query.query_id for query in sample]

    assert len(set(ids)) == 10
    assert ids == sorted(ids)
    assert sample == sample_queries(forty_queries, 10, seed=13)
    assert sample != sample_queries(forty_queries, 10, seed=14)
    assert ids != [f"q{i:02d}" for i in range(10)]


@pytest.mark.parametrize(("n", "expected_size"), [(None, 40), (40, 40), (100, 40), (0, 0)])
def test_sample_size_limits(forty_queries, n, expected_size):
    sample = sample_queries(forty_queries, n)

    assert len(sample) == expected_size
    if expected_size == 40:
        assert sample == list(forty_queries.queries)


def test_negative_sample_size_is_rejected(forty_queries):
    with pytest.raises(ValueError, match="sample size"):
        sample_queries(forty_queries, -1)
