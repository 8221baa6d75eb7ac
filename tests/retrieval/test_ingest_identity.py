"""A document's identity is where it lives: same-named files from different folders, corpus files sharing
``_id``s, and folders the walk cannot enter (link loops, no permission) never cost another document."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import app
from retrieval.config import IndexConfig
from retrieval.errors import LoaderError
from retrieval.index import Index
from retrieval.ingest import document_id
from retrieval.loaders import iter_files

runner = CliRunner()


def make_index(home: Path, embedder) -> Index:
    return Index(IndexConfig(home=home), embedder=embedder)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def corpus_line(_id: str, title: str, text: str) -> str:
    return json.dumps({"_id": _id, "title": title, "text": text}) + "\n"


# ----- identity --------------------------------------------------------------------------------------


def test_cli_ingest_of_two_folders_with_the_same_file_name_keeps_both(tmp_path: Path) -> None:
    papers = write(tmp_path / "papers" / "README.md", "# Papers\n\nThe folder holds survey articles.\n")
    notes = write(tmp_path / "notes" / "README.md", "# Notes\n\nThe folder holds meeting minutes.\n")

    first = runner.invoke(app, ["ingest", str(papers.parent), "--json"])
    second = runner.invoke(app, ["ingest", str(notes.parent), "--json"])

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert json.loads(second.stdout)["replaced"] == []
    listed = json.loads(runner.invoke(app, ["docs", "--json"]).stdout)
    assert sorted((d["doc_id"], d["title"]) for d in listed) == sorted(
        [(papers.resolve().as_posix(), "Papers"), (notes.resolve().as_posix(), "Notes")]
    )


def test_a_file_has_one_id_however_it_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = write(tmp_path / "docs" / "a.md", "# A\n\ntext\n")
    (tmp_path / "link.md").symlink_to(file)
    monkeypatch.chdir(tmp_path)
    expected = file.resolve().as_posix()
    assert document_id(Path("docs/a.md")) == document_id(tmp_path / "link.md") == expected


def test_two_corpus_files_with_the_same_ids_stay_apart(tmp_path: Path, embedder) -> None:
    first = write(tmp_path / "a" / "corpus.jsonl", corpus_line("1", "Otters", "Sea otters hold hands."))
    second = write(tmp_path / "b" / "corpus.jsonl", corpus_line("1", "Comets", "A comet's tail glows."))
    index = make_index(tmp_path / "home", embedder)

    assert index.ingest([first.parent]).added == [f"{first.resolve().as_posix()}#1"]
    report = index.ingest([second.parent])

    assert report.replaced == [] and report.added == [f"{second.resolve().as_posix()}#1"]
    assert sorted(p.title for p in index.documents()) == ["Comets", "Otters"]


def test_an_index_keyed_by_relative_ids_re_ingests_without_failing(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "papers"
    file = write(folder / "README.md", "# Papers\n\nThe papers folder holds survey articles.\n")
    index = make_index(tmp_path / "home", embedder)
    assert index.ingest([folder], base=folder).added == ["README.md"]  # how ids were made before

    report = index.ingest([folder])

    assert report.failed == [] and report.added == [file.resolve().as_posix()]
    assert index.document(file.resolve().as_posix()).title == "Papers"


# ----- folders the walk cannot enter ---------------------------------------------------------------


@pytest.fixture
def looped_tree(tmp_path: Path) -> Path:
    """A folder with a good file, a link back to its parent inside a subfolder, and a link to itself."""
    root = tmp_path / "tree"
    write(root / "good.md", "# Good\n\nThis file is fine and should be ingested.\n")
    write(root / "sub" / "inner.md", "# Inner\n\nThis one too, from inside the subfolder.\n")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    (root / "self.md").symlink_to(root / "self.md")
    return root


def test_iter_files_names_a_link_loop_and_walks_on(looped_tree: Path) -> None:
    errors: list[LoaderError] = []
    found = list(iter_files([looped_tree], on_error=errors.append))

    assert [p.relative_to(looped_tree).as_posix() for p in found] == ["good.md", "self.md", "sub/inner.md"]
    assert [(e.path, e.reason.split(" (")[0]) for e in errors] == [
        (str(looped_tree / "sub" / "back"), "symbolic link loop")
    ]


def test_iter_files_without_a_handler_raises_the_loop(looped_tree: Path) -> None:
    with pytest.raises(LoaderError, match="symbolic link loop"):
        list(iter_files([looped_tree]))


def test_ingest_reports_each_link_loop_on_one_line_and_adds_the_rest(looped_tree: Path, embedder) -> None:
    index = make_index(looped_tree.parent / "home", embedder)
    report = index.ingest([looped_tree])

    assert sorted(Path(d).name for d in report.added) == ["good.md", "inner.md"]
    failed = dict(report.failed)
    assert set(failed) == {str(looped_tree / "sub" / "back"), str(looped_tree / "self.md")}
    assert failed[str(looped_tree / "sub" / "back")].startswith("symbolic link loop")
    assert "Too many levels of symbolic links" in failed[str(looped_tree / "self.md")]


def test_ingest_reports_an_unreadable_folder_and_adds_the_rest(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    write(root / "good.md", "# Good\n\nThis file is fine and should be ingested.\n")
    locked = root / "locked"
    write(locked / "secret.md", "# Secret\n\nUnreachable.\n")
    locked.chmod(0)
    # Tests run as root, which reads a chmod 000 folder anyway: make listing it fail as it would for a user.
    real_scandir = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    try:
        report = make_index(tmp_path / "home", embedder).ingest([root])
    finally:
        locked.chmod(0o755)

    assert [Path(d).name for d in report.added] == ["good.md"]
    assert report.failed == [(str(locked), "cannot read folder (Permission denied); skipped")]
