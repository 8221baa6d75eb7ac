"""Read an evaluation dataset in the shared layout (BEIR at document level, plus answers and evidence).

See ``/work/shared/datasets/FORMAT.md``: ``dataset.json``, ``queries.jsonl``, ``qrels/test.tsv`` and either
``corpus.jsonl`` or a ``docs/`` folder whose file paths, relative to the dataset folder, are the document ids.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from evaluation.errors import DatasetError

MANIFEST_FILE = "dataset.json"
QUERIES_FILE = "queries.jsonl"
CORPUS_FILE = "corpus.jsonl"
DOCS_DIR = "docs"
QRELS_FILE = "qrels/test.tsv"
QRELS_COLUMNS = ("query-id", "corpus-id", "score")
UNANSWERABLE = "unanswerable"


@dataclass(frozen=True)
class Evidence:
    """A span of a document that supports the answer; empty text means document-level evidence only."""

    doc_id: str
    text: str


@dataclass(frozen=True)
class Query:
    """One evaluation question with its gold answers, evidence and gold documents."""

    query_id: str
    text: str
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    gold_doc_ids: frozenset[str]
    facts: tuple[str, ...]
    unanswerable: bool = False
    """The documents hold no answer (``metadata.type`` is "unanswerable"): the right reply is to decline."""


@dataclass(frozen=True)
class Dataset:
    """A dataset folder's queries and where its documents are (exactly one of the two paths is set)."""

    name: str
    root: Path
    queries: tuple[Query, ...]
    corpus_path: Path | None
    docs_dir: Path | None


@dataclass(frozen=True)
class CorpusEntry:
    """One line of ``corpus.jsonl``: a whole document."""

    doc_id: str
    title: str
    text: str


def load_dataset(root: Path) -> Dataset:
    """Read and check the dataset folder ``root``; raises DatasetError naming the file and line at fault."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a dataset folder (expected a directory holding {QUERIES_FILE})")
    corpus_path, docs_dir = _document_source(root)
    queries_path = root / QUERIES_FILE
    if not queries_path.is_file():
        raise DatasetError(f"{queries_path}: {QUERIES_FILE} is missing; every dataset needs its queries")
    parsed = _read_queries(queries_path)
    qrels_path = root / QRELS_FILE
    judged = _read_qrels(qrels_path) if qrels_path.is_file() else None
    queries = tuple(_with_gold_docs(query, f"{queries_path} line {line}", judged) for query, line in parsed)
    return Dataset(
        name=_dataset_name(root), root=root, queries=queries, corpus_path=corpus_path, docs_dir=docs_dir
    )


def sample_queries(dataset: Dataset, n: int | None, *, seed: int = 13) -> list[Query]:
    """``n`` queries drawn with ``seed``, in dataset order; all of them when ``n`` is None or too large."""
    if n is not None and n < 0:
        raise ValueError(f"sample size must be zero or more, got {n}")
    queries = dataset.queries
    if n is None or n >= len(queries):
        return list(queries)
    chosen = sorted(random.Random(seed).sample(range(len(queries)), n))
    return [queries[index] for index in chosen]


def read_corpus(dataset: Dataset) -> Iterator[CorpusEntry]:
    """The documents of a ``corpus.jsonl`` dataset, one by one; raises DatasetError on a malformed line."""
    if dataset.corpus_path is None:
        raise DatasetError(f"{dataset.root}: has a {DOCS_DIR}/ folder, not {CORPUS_FILE}; use list_doc_files")
    for line_number, record in _jsonl_records(dataset.corpus_path):
        where = f"{dataset.corpus_path} line {line_number}"
        yield CorpusEntry(
            doc_id=_required_id(record, "_id", where),
            title=_optional_str(record, "title", where),
            text=_required_str(record, "text", where, allow_empty=True),
        )


def list_doc_files(dataset: Dataset) -> list[tuple[str, Path]]:
    """The files of a ``docs/`` dataset as (doc id, path), sorted by id; hidden files are skipped."""
    if dataset.docs_dir is None:
        raise DatasetError(f"{dataset.root}: has {CORPUS_FILE}, not a {DOCS_DIR}/ folder; use read_corpus")
    docs_dir = dataset.docs_dir
    files = (path for path in docs_dir.rglob("*") if path.is_file() and not _is_hidden(path, docs_dir))
    return sorted((path.relative_to(dataset.root).as_posix(), path) for path in files)


def _is_hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _document_source(root: Path) -> tuple[Path | None, Path | None]:
    corpus_path, docs_dir = root / CORPUS_FILE, root / DOCS_DIR
    has_corpus, has_docs = corpus_path.is_file(), docs_dir.is_dir()
    if has_corpus and has_docs:
        raise DatasetError(f"{root}: has both {CORPUS_FILE} and {DOCS_DIR}/; keep exactly one of them")
    if not has_corpus and not has_docs:
        raise DatasetError(f"{root}: has neither {CORPUS_FILE} nor {DOCS_DIR}/; add one of them")
    return (corpus_path, None) if has_corpus else (None, docs_dir)


def _dataset_name(root: Path) -> str:
    path = root / MANIFEST_FILE
    if not path.is_file():
        return root.name
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path} line 1: expected a JSON object")
    name = manifest.get("name")
    if name is None:
        return root.name
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"{path}: 'name' must be a non-empty string")
    return name


def _jsonl_records(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path} line {line_number}: invalid JSON ({exc})") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path} line {line_number}: expected a JSON object")
            yield line_number, record


def _read_queries(path: Path) -> list[tuple[Query, int]]:
    parsed: list[tuple[Query, int]] = []
    first_line: dict[str, int] = {}
    for line_number, record in _jsonl_records(path):
        where = f"{path} line {line_number}"
        query = _parse_query(record, where)
        if query.query_id in first_line:
            raise DatasetError(
                f"{where}: duplicate query id {query.query_id!r} (first on line {first_line[query.query_id]})"
            )
        first_line[query.query_id] = line_number
        parsed.append((query, line_number))
    return parsed


def _parse_query(record: Mapping[str, object], where: str) -> Query:
    items = _optional_list(record, "evidence", where)
    evidence = tuple(_parse_evidence(item, f"{where}: evidence[{index}]") for index, item in enumerate(items))
    return Query(
        query_id=_required_id(record, "_id", where),
        text=_required_str(record, "text", where),
        answers=tuple(_string_items(record, "answers", where)),
        evidence=evidence,
        gold_doc_ids=frozenset(item.doc_id for item in evidence),
        facts=_parse_facts(record, where),
        unanswerable=_metadata(record, where).get("type") == UNANSWERABLE,
    )


def _parse_evidence(item: object, where: str) -> Evidence:
    if not isinstance(item, dict):
        raise DatasetError(f"{where} must be an object with 'doc_id' and 'text'")
    return Evidence(doc_id=_required_id(item, "doc_id", where), text=_optional_str(item, "text", where))


def _metadata(record: Mapping[str, object], where: str) -> Mapping[str, object]:
    metadata = record.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: 'metadata' must be an object")
    return metadata


def _parse_facts(record: Mapping[str, object], where: str) -> tuple[str, ...]:
    facts = _metadata(record, where).get("facts")
    if facts is None:
        return ()
    if not isinstance(facts, list) or not all(_is_figure(fact) for fact in facts):
        raise DatasetError(f"{where}: 'metadata.facts' must be a list of strings or numbers")
    return tuple(str(fact) for fact in facts)


def _is_figure(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _required_id(record: Mapping[str, object], key: str, where: str) -> str:
    if key not in record:
        raise DatasetError(f"{where}: missing {key!r}")
    value = record[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{where}: {key!r} must be a non-empty string")
    return value


def _required_str(record: Mapping[str, object], key: str, where: str, *, allow_empty: bool = False) -> str:
    if key not in record:
        raise DatasetError(f"{where}: missing {key!r}")
    value = record[key]
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {key!r} must be a string")
    if not allow_empty and not value.strip():
        raise DatasetError(f"{where}: {key!r} is empty")
    return value


def _optional_str(record: Mapping[str, object], key: str, where: str) -> str:
    value = record.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {key!r} must be a string")
    return value


def _optional_list(record: Mapping[str, object], key: str, where: str) -> list[object]:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DatasetError(f"{where}: {key!r} must be a list")
    return value


def _string_items(record: Mapping[str, object], key: str, where: str) -> list[str]:
    items = _optional_list(record, key, where)
    if not all(isinstance(item, str) for item in items):
        raise DatasetError(f"{where}: {key!r} must be a list of strings")
    return [item for item in items if isinstance(item, str)]


def _read_qrels(path: Path) -> dict[str, set[str]]:
    judged: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            columns = line.rstrip("\r\n").split("\t")
            where = f"{path} line {line_number}"
            if len(columns) != len(QRELS_COLUMNS):
                raise DatasetError(
                    f"{where}: expected {len(QRELS_COLUMNS)} tab-separated columns "
                    f"({', '.join(QRELS_COLUMNS)}), found {len(columns)}"
                )
            query_id, doc_id, score_text = (column.strip() for column in columns)
            score = _qrels_score(score_text, where, is_first_line=line_number == 1)
            if score is not None and score > 0:
                judged.setdefault(query_id, set()).add(doc_id)
    return judged


def _qrels_score(text: str, where: str, *, is_first_line: bool) -> float | None:
    try:
        return float(text)
    except ValueError:
        if is_first_line:
            return None  # the header line
        raise DatasetError(f"{where}: score {text!r} is not a number") from None


def _with_gold_docs(query: Query, where: str, judged: dict[str, set[str]] | None) -> Query:
    if judged is None:
        if not query.gold_doc_ids:
            raise DatasetError(
                f"{where}: query {query.query_id!r} names no evidence document and {QRELS_FILE} is missing; "
                "add the qrels file or evidence[].doc_id"
            )
        return query
    return replace(query, gold_doc_ids=query.gold_doc_ids | judged.get(query.query_id, set()))
