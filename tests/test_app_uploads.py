"""Uploads in the app's library never lose a file: same names in one batch, a bad re-upload, a long name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from agents.settings import load_settings
from retrieval.index import Index
from ui import library

ROOT = Path(__file__).resolve().parents[1]
KITES = b"# Kites\n\nThe first kites were flown in China more than two thousand years ago.\n"
TIDES = b"# Tides\n\nTides rise and fall twice a day, pulled by the Moon and the Sun.\n"


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> None:
    at.file_uploader[0].set_value([(name, data, "text/markdown") for name, data in files]).run()
    next(b for b in at.button if b.label.startswith(f"Ingest {len(files)} file")).click().run()
    assert not at.exception, [e.value for e in at.exception]


def library_titles(at: AppTest) -> list[str]:
    return sorted(e.label.split(" — ")[0] for e in at.expander if " chunks" in e.label)


def test_two_uploads_with_one_name_in_a_batch_both_stay(app: AppTest, tmp_path: Path) -> None:
    upload(app, [("report.md", KITES), ("report.md", TIDES)])

    assert library_titles(app) == ["Kites", "Tides"]
    assert any("report.md" in s.value and "report (2).md" in s.value for s in app.success)
    uploads = tmp_path / "home" / "uploads"
    assert sorted(p.read_bytes() for p in uploads.iterdir()) == sorted([KITES, TIDES])


def test_a_bad_re_upload_keeps_the_good_file_and_its_document(app: AppTest, tmp_path: Path) -> None:
    upload(app, [("report.md", KITES)])
    upload(app, [("report.md", b"   \n")])

    assert [e.value for e in app.error] == ["report.md: empty file (no text)"]
    assert library_titles(app) == ["Kites"]
    uploads = tmp_path / "home" / "uploads"
    assert [(p.name, p.read_bytes()) for p in uploads.iterdir()] == [("report.md", KITES)]


def test_a_name_too_long_for_the_disk_is_shortened_and_the_batch_goes_on(
    app: AppTest, tmp_path: Path
) -> None:
    long_name = "é" * 200 + ".md"  # 403 bytes: over the 255 a file name may have
    upload(app, [(long_name, KITES), ("tides.md", TIDES)])

    assert not app.error
    assert library_titles(app) == ["Kites", "Tides"]
    names = [p.name for p in (tmp_path / "home" / "uploads").iterdir()]
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names)
    assert any(n.startswith("é") and n.endswith(".md") for n in names)


def test_a_re_upload_of_the_same_name_replaces_the_document(tmp_path: Path, embedder: Any) -> None:
    index = Index(load_settings({"home": tmp_path / "h"}).index, embedder=embedder)
    folder = tmp_path / "uploads"
    assert library.ingest_uploads(index, [("notes.md", KITES)], folder).added == ["notes.md"]

    outcome = library.ingest_uploads(index, [("notes.md", TIDES)], folder)

    assert outcome.replaced == ["notes.md"] and outcome.failed == []
    assert [p.title for p in index.documents()] == ["Tides"]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md"]


@pytest.mark.parametrize(
    ("name", "limit"),
    [("a" * 300 + ".pdf", 200), ("é" * 150 + ".md", 100), ("b" * 300, 50)],
    ids=["ascii", "multibyte", "no-extension"],
)
def test_safe_filename_shortens_long_names_keeping_their_extension(name: str, limit: int) -> None:
    short = library.safe_filename(name, max_bytes=limit)
    assert len(short.encode()) <= limit
    assert Path(short).suffix == Path(name).suffix
    assert short != library.safe_filename(name[1:], max_bytes=limit), "names sharing a long start stay apart"
