"""The web UI (``streamlit run app.py``): chat with checked citations, each step's trace, a library."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import SecretStr

from agents import (
    Agent,
    Answer,
    ConfigError,
    Index,
    MultigrainError,
    ResetEvent,
    Settings,
    StepEvent,
    TokenEvent,
)
from agents.state import Citation
from retrieval.config import IndexConfig
from retrieval.index import IngestReport
from ui import library, panels, view

# ----- settings, index and agent (cached per settings) ----------------------------------------------


@st.cache_resource(show_spinner="Opening the index…", max_entries=4)
def _open_index(fingerprint: str, _config: IndexConfig) -> Index:
    return Index(_config)


@st.cache_resource(show_spinner="Preparing the agent…", max_entries=8)
def _open_agent(fingerprint: str, _settings: Settings, _index: Index) -> Agent:
    return Agent(_settings, index=_index)


def _agent(settings: Settings) -> Agent:
    index = _open_index(library.fingerprint(settings.index), settings.index)
    return _open_agent(library.settings_fingerprint(settings), settings, index)


# ----- sidebar: conversations and settings ----------------------------------------------------------


def _new_thread() -> None:
    st.session_state.thread_id = uuid.uuid4().hex


def _conversations(agent: Agent) -> None:
    st.button("New conversation", icon=":material/add_comment:", on_click=_new_thread, width="stretch")
    current = st.session_state.thread_id
    stored = agent.threads()[:30]
    options = stored if current in stored else [current, *stored]
    labels = view.thread_labels({t: agent.history(t) for t in options})
    chosen = st.radio(
        "Conversations",
        options,
        index=options.index(current),
        format_func=lambda thread: view.markdown_text(labels[thread]),
    )
    if chosen != current:
        st.session_state.thread_id = chosen
        st.rerun()


def _init_form(settings: Settings) -> None:
    defaults: dict[str, Any] = {
        "set_base_url": settings.llm.base_url or "",
        "set_model": settings.llm.model,
        "set_api_key": "",
        "set_retrieve_k": settings.retrieve.k,
        "set_rerank_k": settings.rerank.k,
        "set_route_min": settings.route.min_docs,
        "set_route_max": settings.route.max_docs,
        **{f"set_{s}": getattr(settings, s).enabled for s in library.SWITCHABLE_STAGES},
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def _form_settings() -> tuple[dict[str, Any], SecretStr | None]:
    state = st.session_state
    overrides = library.settings_overrides(
        base_url=state.set_base_url,
        model=state.set_model,
        stages={s: state[f"set_{s}"] for s in library.SWITCHABLE_STAGES},
        retrieve_k=int(state.set_retrieve_k),
        rerank_k=int(state.set_rerank_k),
        route_min=int(state.set_route_min),
        route_max=int(state.set_route_max),
    )
    typed = state.set_api_key.strip()
    return overrides, SecretStr(typed) if typed else state.get("api_key")


def _apply_settings() -> None:
    overrides, key = _form_settings()
    try:
        library.settings_with_key(overrides, key)
    except ConfigError as exc:
        st.session_state.settings_message = ("error", str(exc))
        return
    st.session_state.overrides, st.session_state.api_key = overrides, key
    st.session_state.set_api_key = ""
    st.session_state.settings_message = ("success", "Settings applied; the next question uses them.")


def _test_connection() -> None:
    overrides, key = _form_settings()
    try:
        result = library.check_connection(library.settings_with_key(overrides, key))
    except ConfigError as exc:
        result = library.ConnectionResult(False, str(exc))
    st.session_state.settings_message = ("success" if result.ok else "error", result.message)


def _forget_key() -> None:
    st.session_state.api_key = None
    st.session_state.settings_message = ("success", "The API key entered here was forgotten.")


def _settings_panel(settings: Settings) -> None:
    _init_form(settings)
    has_key = settings.llm.api_key is not None
    with st.form("settings", border=False):
        st.text_input("LLM base URL", key="set_base_url", placeholder="https://api.openai.com/v1")
        st.text_input("Model", key="set_model")
        hint = "a key is set (hidden)" if has_key else "none (offline)"
        st.text_input("API key", key="set_api_key", type="password", placeholder=hint)
        st.caption("Stages")
        for stage in library.SWITCHABLE_STAGES:
            st.toggle(stage, key=f"set_{stage}")
        st.number_input("Passages retrieved (retrieve.k)", min_value=1, max_value=200, key="set_retrieve_k")
        st.number_input("Passages kept by rerank (rerank.k)", min_value=1, max_value=50, key="set_rerank_k")
        st.number_input("Fewest documents routed", min_value=1, key="set_route_min")
        st.number_input("Most documents routed", min_value=1, key="set_route_max")
        st.form_submit_button("Apply", on_click=_apply_settings, type="primary", width="stretch")
        st.form_submit_button("Test connection", on_click=_test_connection, width="stretch")
    if st.session_state.get("api_key") is not None:
        st.button("Forget the API key", on_click=_forget_key)
    message = st.session_state.get("settings_message")
    if message:
        (st.success if message[0] == "success" else st.error)(view.markdown_text(message[1]))


def _sidebar(agent: Agent) -> Any:
    """Title, mode and settings; returns the slot for the conversations, filled after the chat ran."""
    with st.sidebar:
        st.title("Multigrain")
        st.caption(f"Mode: {view.markdown_text(agent.mode)}")
        conversations = st.container()
        with st.expander("Settings", icon=":material/settings:"):
            _settings_panel(agent.settings)
    return conversations


# ----- the library ----------------------------------------------------------------------------------


def _progress_callback(bar: Any) -> Any:
    def report(done: int, total: int, path: str) -> None:
        name = view.markdown_text(Path(path).name)
        bar.progress(done / max(total, 1), text=f"Reading and indexing {done}/{total}: {name}")

    return report


def _load_demo(index: Index) -> None:
    bar = st.progress(0.0, text="Loading the demo corpus…")
    with library.demo_folder() as folder:
        report = index.ingest([folder], base=folder, progress=_progress_callback(bar))
    st.session_state.upload_outcome = report
    st.session_state.toast = (
        f"The demo corpus is in the library: {len(report.added) + len(report.replaced)} documents."
    )
    st.rerun()


def _demo_offer(index: Index, *, where: str) -> None:
    st.info(
        "The library is empty. Upload your own files in the Library tab, or start with the demo corpus "
        "(8 short articles: the Rosetta Stone, honeybees, the James Webb telescope, sourdough and more)."
    )
    if st.button("Load the demo corpus", type="primary", key=f"demo-{where}"):
        _load_demo(index)


def _show_outcome() -> None:
    outcome: IngestReport | None = st.session_state.get("upload_outcome")
    if outcome is None:
        return
    done = [*outcome.added, *outcome.replaced]
    if done:
        st.success(f"Added {len(done)} document(s): {view.markdown_list(done)}")
    if outcome.unchanged:
        st.info(f"Already in the library, unchanged: {view.markdown_list(outcome.unchanged)}")
    for name, reason in outcome.failed:
        st.error(f"{view.markdown_text(name)}: {view.markdown_text(reason)}")


def _upload(index: Index, settings: Settings) -> None:
    limit = settings.index.max_file_mb
    st.caption(
        f"Accepted: {', '.join('.' + t for t in library.upload_types())} · up to {limit:g} MB per file"
    )
    key = f"uploader-{st.session_state.get('uploader_round', 0)}"
    uploads = st.file_uploader(
        "Add files to the library",
        type=library.upload_types(),
        accept_multiple_files=True,
        key=key,
        max_upload_size=math.ceil(limit),
    )
    if uploads and st.button(f"Ingest {len(uploads)} file(s)", type="primary"):
        bar = st.progress(0.0, text="Saving the files…")
        st.session_state.upload_outcome = library.ingest_uploads(
            index,
            [(u.name, u.getvalue()) for u in uploads],
            settings.home / "uploads",
            progress=_progress_callback(bar),
        )
        st.session_state.uploader_round = st.session_state.get("uploader_round", 0) + 1
        st.rerun()
    _show_outcome()


def _remove(index: Index, doc_id: str, folder: Path) -> None:
    removed = library.remove_document(index, doc_id, folder)
    st.session_state.upload_outcome = None
    shown = view.markdown_text(doc_id)
    st.session_state.library_message = f"Removed {shown}." if removed else f"{shown} was already gone."


def _library(agent: Agent) -> None:
    index, settings = agent.index, agent.settings
    _upload(index, settings)
    profiles = index.documents()
    st.subheader(f"Documents ({len(profiles)})")
    if st.session_state.get("library_message"):
        st.caption(st.session_state.pop("library_message"))
    if not profiles:
        _demo_offer(index, where="library")
    for profile in profiles:
        label = f"{view.markdown_text(profile.title)} — {profile.chunks} chunks"
        with st.expander(label, icon=":material/description:"):
            st.markdown(view.markdown_text(profile.summary))
            st.caption(f"Keywords: {view.markdown_list(profile.keywords)}")
            st.caption(library.profile_facts(profile))
            st.button(
                "Remove from the library",
                key=f"remove-{profile.doc_id}",
                on_click=_remove,
                icon=":material/delete:",
                args=(index, profile.doc_id, settings.home / "uploads"),
            )


# ----- one answer -----------------------------------------------------------------------------------


def _follow(key: str, number: int) -> None:
    followed = (key, number)
    st.session_state.followed = None if st.session_state.get("followed") == followed else followed


def _source_panel(index: Index, answer: Answer, citation: Citation) -> None:
    passage = next((p for p in answer.passages if p["chunk_id"] == citation["chunk_id"]), None)
    try:
        document = index.document(citation["doc_id"])
    except MultigrainError as exc:
        st.warning(f"The source is no longer in the library: {view.markdown_text(str(exc))}")
        return
    shown = view.source_view(document, citation, passage=passage)
    section = f"Section: {view.markdown_text(shown.section)}" if shown.section else ""
    where = [section, f"page {shown.page}" if shown.page else ""]
    with st.container(border=True):
        st.markdown(f"**{view.markdown_text(shown.title)}**")
        st.caption(" · ".join(part for part in where if part) or "No section or page")
        st.markdown(shown.html, unsafe_allow_html=True)
        verdict = view.VERDICT_SYMBOLS.get(citation["verdict"], "")
        st.caption(
            f"{verdict} {citation['verdict']} (support {citation['support']:.2f}) · characters "
            f"{citation['start']}–{citation['end']} of {view.markdown_code(shown.doc_id)}"
        )
        if not shown.exact:
            st.warning("The text at this span differs from the quote the verifier recorded.")


def _citations(index: Index, answer: Answer, key: str) -> None:
    if not answer.citations:
        return
    st.caption("Sources: click one to see the passage it quotes")
    followed = st.session_state.get("followed")
    for citation in answer.citations:
        number = citation["number"]
        st.button(
            view.citation_label(citation),
            key=f"cite-{key}-{number}",
            on_click=_follow,
            args=(key, number),
            help=f"{citation['verdict']}: {view.markdown_text(citation['quote'])}",
        )
        if followed == (key, number):
            _source_panel(index, answer, citation)


def _render_answer(index: Index, answer: Answer, key: str) -> None:
    for notice in answer.notices:
        st.info(view.markdown_text(notice), icon=":material/info:")
    degraded = view.degradation_notice(answer.trace)
    if degraded:
        st.warning(degraded, icon=":material/warning:")
    if answer.sentences:
        st.markdown(view.answer_html(answer.sentences), unsafe_allow_html=True)
        if any(sentence["verdict"] for sentence in answer.sentences):
            st.markdown(view.LEGEND_HTML, unsafe_allow_html=True)
    else:
        st.markdown(view.plain_html(answer.text or "(no answer)"), unsafe_allow_html=True)
    _citations(index, answer, key)
    panels.trace_panels(answer)


# ----- the chat -------------------------------------------------------------------------------------


def _stream_answer(agent: Agent, question: str, thread: str) -> Answer | None:
    status = st.status(f"{view.STAGES['expand']}…", expanded=True)
    slot = st.empty()
    written, started, answer = "", time.perf_counter(), None
    try:
        for event in agent.stream(question, thread_id=thread):
            if isinstance(event, TokenEvent):
                written += event.text
                slot.markdown(view.plain_html(written + " ▌"), unsafe_allow_html=True)
            elif isinstance(event, StepEvent):
                status.write(view.markdown_text(view.step_line(event.entry)))
                status.update(label=view.next_stage_label(event.step))
            elif isinstance(event, ResetEvent):
                written = ""
                slot.empty()
                status.write(f"↺ The draft was withdrawn: {view.markdown_text(event.reason)}")
            else:
                answer = event
    except MultigrainError as exc:
        status.update(label="Failed", state="error")
        st.error(view.markdown_text(str(exc)))
        return None
    elapsed = time.perf_counter() - started
    status.update(label=f"Answered in {elapsed:.1f} s", state="complete", expanded=False)
    slot.empty()
    return answer


def _say(role: str, text: str, *, into: Any = st) -> None:
    """A chat message shown as written (no Markdown or math read into it)."""
    into.chat_message(role).markdown(view.plain_html(text), unsafe_allow_html=True)


def _history(agent: Agent, thread: str) -> list[Answer]:
    answers: dict[str, list[Answer]] = st.session_state.setdefault("answers", {})
    rich = answers.setdefault(thread, [])
    stored = agent.history(thread)
    for turn in stored[: max(0, len(stored) - len(rich))]:
        _say("user", turn.get("question", ""))
        _say("assistant", turn.get("answer", ""))
    for i, answer in enumerate(rich):
        _say("user", answer.question)
        with st.chat_message("assistant"):
            _render_answer(agent.index, answer, f"{thread[:8]}-{i}")
    return rich


def _chat(agent: Agent) -> None:
    if not agent.index.documents():
        _demo_offer(agent.index, where="chat")
        _show_outcome()
    thread = st.session_state.thread_id
    rich = _history(agent, thread)
    latest = st.container()
    question = st.chat_input("Ask a question about your documents")
    if not question or not question.strip():
        return
    _say("user", question, into=latest)
    with latest.chat_message("assistant"):
        answer = _stream_answer(agent, question, thread)
        if answer is not None:
            rich.append(answer)
            _render_answer(agent.index, answer, f"{thread[:8]}-{len(rich) - 1}")


def main() -> None:
    """Lay out the page: sidebar (conversations, settings), then the Chat and Library tabs."""
    st.set_page_config(page_title="Multigrain", page_icon=":material/grain:", layout="wide")
    st.markdown(view.STYLE, unsafe_allow_html=True)
    st.session_state.setdefault("thread_id", uuid.uuid4().hex)
    try:
        state = st.session_state
        settings = library.settings_with_key(state.get("overrides", {}), state.get("api_key"))
    except ConfigError as exc:
        st.error(view.markdown_text(str(exc)))
        st.stop()
    agent = _agent(settings)
    if toast := st.session_state.pop("toast", None):
        st.toast(toast, icon=":material/library_add_check:")
    conversations = _sidebar(agent)
    chat_tab, library_tab = st.tabs(["Chat", "Library"])
    with library_tab:
        _library(agent)
    with chat_tab:
        _chat(agent)
    with conversations:
        _conversations(agent)


if __name__ == "__main__":
    main()
