"""What the sidebar does, without Streamlit: the settings form's actions and the document library's.

Settings: the form's values as ``load_settings`` overrides, cache keys that track secrets without holding
them, and the 'Test connection' call. Library: which files the uploader takes, saving and ingesting
uploads (refusing bad ones with a reason), removing a document and its uploaded file, one line of facts
per document, and the bundled demo corpus. ``app.py`` only wires these to widgets; what the chat shows
is in ``ui.view``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from agents import LLMError, Settings, load_settings
from agents.openai_chat import OpenAIChatModel
from agents.steps import SWITCHABLE_STEPS
from retrieval.hits import DocProfile, IngestReport
from retrieval.ingest import document_id
from retrieval.loaders import SUPPORTED_SUFFIXES
from retrieval.urls import redact_url
from ui.view import markdown_code, markdown_text

__all__ = [
    "SWITCHABLE_STAGES",
    "ConnectionResult",
    "check_connection",
    "demo_folder",
    "fingerprint",
    "ingest_uploads",
    "profile_facts",
    "remove_document",
    "safe_filename",
    "settings_fingerprint",
    "settings_overrides",
    "settings_with_key",
    "upload_types",
]

SWITCHABLE_STAGES = SWITCHABLE_STEPS
# File names are at most 255 bytes on common file systems; the margin leaves room for " (2)" on a
# repeated name and for the prefix of a file kept aside while its replacement is read.
MAX_NAME_BYTES = 200
_MAX_SUFFIX_CHARS = 16
_KEPT_PREFIX = ".replaced-"


# ----- settings ------------------------------------------------------------------------------------


def settings_overrides(
    *,
    base_url: str,
    model: str,
    stages: Mapping[str, bool],
    retrieve_k: int,
    rerank_k: int,
    route_min: int,
    route_max: int,
) -> dict[str, Any]:
    """The ``load_settings`` overrides for what the settings form holds (the API key goes separately)."""
    overrides: dict[str, Any] = {
        "llm": {"model": model.strip() or "gpt-4o-mini"},
        "retrieve": {"k": retrieve_k},
        "rerank": {"k": rerank_k},
        "route": {"min_docs": route_min, "max_docs": route_max},
        "expand": {},
        "verify": {},
    }
    if base_url.strip():
        overrides["llm"]["base_url"] = base_url.strip()
    for stage in SWITCHABLE_STAGES:
        overrides[stage]["enabled"] = bool(stages.get(stage, True))
    return overrides


def settings_with_key(overrides: Mapping[str, Any], key: SecretStr | None) -> Settings:
    """Settings from the form's overrides, the API key entered in the UI (if any) over the configured one."""
    llm = {**overrides.get("llm", {}), **({"api_key": key} if key else {})}
    return load_settings({**overrides, "llm": llm})


def _secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets(item)


def fingerprint(model: BaseModel) -> str:
    """A cache key that changes with any setting, secrets included, without containing them."""
    material = "\x00".join([model.model_dump_json(), *_secrets(model.model_dump())])
    return hashlib.sha256(material.encode()).hexdigest()


def settings_fingerprint(settings: Settings) -> str:
    """The cache key of an Agent built from ``settings``."""
    return fingerprint(settings)


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of 'Test connection'."""

    ok: bool
    message: str


def check_connection(
    settings: Settings, *, ping: Callable[[Settings], str] | None = None
) -> ConnectionResult:
    """One tiny call to the configured model; on failure the ``LLMError`` message says exactly what failed."""
    if not settings.llm.enabled:
        return ConnectionResult(False, "No LLM is configured (set a base URL or an API key): offline mode.")
    call = ping or (lambda s: OpenAIChatModel(s.llm).ping())
    endpoint = redact_url(settings.llm.base_url or "https://api.openai.com/v1")
    try:
        reply = call(settings)
    except LLMError as exc:
        return ConnectionResult(False, str(exc))
    message = f"Connected to {settings.llm.model} at {endpoint}: it replied {reply.strip()!r}."
    return ConnectionResult(True, message)


# ----- the library ---------------------------------------------------------------------------------


def profile_facts(profile: DocProfile) -> str:
    """A document's id, size and source in one line of Markdown (pages only for paged documents)."""
    pages = f" · {profile.pages} pages" if profile.pages else ""
    return (
        f"id {markdown_code(profile.doc_id)} · {profile.chunks} chunks · {profile.sentences} sentences"
        f"{pages} · {profile.chars:,} characters · {markdown_text(profile.source)}"
    )


def upload_types() -> list[str]:
    """File extensions the uploader accepts, without dots."""
    return sorted(suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES)


def demo_folder() -> AbstractContextManager[Path]:
    """The bundled demo corpus as a folder on disk (a context manager, as ``importlib.resources`` has it)."""
    return as_file(files("retrieval") / "data" / "demo")


def safe_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """An uploaded file's name as a plain file name: no folders, no leading dots, no odd characters, and
    at most ``max_bytes`` bytes (a longer name keeps its start, a hash of the whole and its extension)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.\- ]+", "_", base).strip(" .") or "upload"
    if len(cleaned.encode()) <= max_bytes:
        return cleaned
    suffix = Path(cleaned).suffix if len(Path(cleaned).suffix) <= _MAX_SUFFIX_CHARS else ""
    tag = "~" + hashlib.sha256(cleaned.encode()).hexdigest()[:8]
    room = max_bytes - len(tag.encode()) - len(suffix.encode())
    stem = cleaned[: len(cleaned) - len(suffix)].encode()[:room].decode(errors="ignore").rstrip(" .")
    return f"{stem}{tag}{suffix}"


def _unused_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… when an earlier upload of the same batch has it."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem} ({number}){suffix}"
    taken.add(candidate)
    return candidate


def _refusal(name: str, data: bytes, *, max_mb: float) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"'{suffix}'" if suffix else "(no extension)"
        return f"unsupported file type {kind} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
    if len(data) > max_mb * 2**20:
        return f"file is {len(data) / 2**20:.3g} MB, over the {max_mb:g} MB limit (index.max_file_mb)"
    return None


@dataclass
class _SavedUploads:
    """Uploads written into the library folder, each earlier file of the same name kept aside until the
    new one has been read, so that a bad upload never costs the good file it would replace."""

    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)
    kept: dict[Path, Path] = field(default_factory=dict)

    def save(self, name: str, data: bytes) -> None:
        """Write one upload as ``name``; raises OSError when it cannot be written (the old file stays)."""
        path = self.folder / name
        if path.exists():
            self.kept[path] = self.folder / f"{_KEPT_PREFIX}{name}"
            os.replace(path, self.kept[path])
        try:
            path.write_bytes(data)
        except OSError:
            self.discard(path)
            raise
        self.paths[str(path)] = path

    def discard(self, path: Path) -> None:
        """Delete a new upload and put back the file it replaced, if any."""
        path.unlink(missing_ok=True)
        self.paths.pop(str(path), None)
        kept = self.kept.pop(path, None)
        if kept is not None:
            os.replace(kept, path)

    def commit(self) -> None:
        """The remaining uploads are in the library: drop the files they replaced."""
        for kept in self.kept.values():
            kept.unlink(missing_ok=True)
        self.kept.clear()


def ingest_uploads(
    index: Any,
    uploads: Iterable[tuple[str, bytes]],
    folder: Path,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Save each (name, bytes) upload into ``folder`` and ingest them; a bad file gets its reason.

    Files refused before saving (type, size, a name the disk rejects) and files the loaders reject are
    listed in ``failed`` with the reason; a rejected file is not kept on disk, and a file it would have
    replaced is put back. Two uploads of one name in a batch are saved as ``name`` and ``name (2)``. The
    outcome lists documents by their place in ``folder`` ("notes.md"), not by their absolute ids.
    """
    outcome = IngestReport()
    folder.mkdir(parents=True, exist_ok=True)
    saved, taken = _SavedUploads(folder), set[str]()
    for name, data in uploads:
        clean = safe_filename(name)
        refusal = _refusal(clean, data, max_mb=index.config.max_file_mb)
        if refusal is not None:
            outcome.failed.append((name, refusal))
            continue
        try:
            saved.save(_unused_name(clean, taken), data)
        except OSError as exc:
            outcome.failed.append((name, f"cannot save the file ({exc.strerror or exc})"))
    if not saved.paths:
        return outcome
    try:
        report: IngestReport = index.ingest(list(saved.paths.values()), progress=progress)
    except BaseException:
        for path in list(saved.paths.values()):
            saved.discard(path)
        raise
    for path_text, reason in report.failed:
        outcome.failed.append((Path(path_text).name, reason))
        if path_text in saved.paths:
            saved.discard(saved.paths[path_text])
    saved.commit()
    within = document_id(folder) + "/"
    outcome.added, outcome.replaced, outcome.unchanged = (
        [doc_id.removeprefix(within) for doc_id in ids]
        for ids in (report.added, report.replaced, report.unchanged)
    )
    return outcome


def remove_document(index: Any, doc_id: str, folder: Path) -> bool:
    """Remove a document from the index, and its uploaded file when no other document comes from it."""
    profiles = {p.doc_id: p for p in index.documents()}
    profile = profiles.get(doc_id)
    removed = bool(index.remove(doc_id))
    if profile is None or not removed:
        return removed
    source = Path(profile.source)
    shared = any(p.source == profile.source for d, p in profiles.items() if d != doc_id)
    if not shared and source.parent.resolve() == folder.resolve():
        source.unlink(missing_ok=True)
    return removed
