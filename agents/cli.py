"""The ``multigrain`` command: ingest documents, list and remove them, ask questions, run evaluations."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec

import typer

from agents._flags import SettingFlag, with_setting_flags
from agents.errors import MultigrainError, RetrievalError
from agents.settings import load_settings
from agents.steps import SWITCHABLE_STEPS

if TYPE_CHECKING:
    from agents.agent import Agent, Answer
    from agents.settings import Settings
    from agents.state import Citation, TraceEntry
    from retrieval.index import Index, IngestReport

DEMO_QUESTIONS = (
    "At what temperature does the JWST's MIRI instrument operate?",
    "What is the best-known sourdough bacterium?",
    "When did Vanguard launch the First Index Investment Trust?",
)
VERDICT_COLOURS = {"supported": "green", "partial": "yellow", "unsupported": "red"}
MAX_QUOTE_CHARS = 200
MAX_KEYWORDS = 5
DEFAULT_SIZES = "1000,10000,100000"
ABLATE_HELP = (
    "Also score with each of these stages off, comma-separated: "
    "expand,route,links,rerank,verify,weights,drill,late."
)

STAGE_SWITCHES = tuple(SettingFlag(f"{stage}.enabled") for stage in SWITCHABLE_STEPS)
ASK_SIZES = (
    SettingFlag("retrieve.k", "--k"),
    SettingFlag("rerank.k", "--rerank-k"),
    SettingFlag("route.min_docs", "--route-min"),
    SettingFlag("route.max_docs", "--route-max"),
    SettingFlag("expand.rewrites"),
)
MODEL_FLAGS = (SettingFlag("llm.model"), SettingFlag("llm.base_url"))

P = ParamSpec("P")

# CSI; OSC, DCS, SOS, PM and APC up to their terminator (BEL or ST) or the line's end; other ESC sequences.
_TERMINAL_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f]")  # json.dumps escapes C0 controls but writes DEL and C1 as they are


app = typer.Typer(
    help="Question answering over your own documents, with checked citations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Measure ingestion, query and start-up speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _flag(name: str, *, help: str) -> Any:
    """An on/off option, shown without a value placeholder."""
    return typer.Option(name, help=help, metavar="")


def terminal_text(text: str) -> str:
    """Text safe on a terminal: escape sequences and control characters removed, newlines and tabs kept."""
    return _CONTROL_CHARS.sub("", _TERMINAL_SEQUENCE.sub("", text))


def _echo_json(text: str, *, err: bool = False) -> None:
    """JSON as is, but DEL and C1 controls written as ``\\u`` escapes: the same value, safe on a terminal."""
    typer.echo(_RAW_IN_JSON.sub(lambda char: f"\\u{ord(char.group()):04x}", text), err=err)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {terminal_text(message)}", fg="red", err=True)
    raise typer.Exit(1)


def _reports_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Turn a ``MultigrainError`` into a red line on stderr and exit code 1; others keep their traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except MultigrainError as exc:
            _fail(str(exc))

    return run


def _open_index(settings: Settings) -> Index:
    from retrieval.index import Index

    return Index(settings.index)


def _open_agent(settings: Settings) -> Agent:
    from agents.agent import Agent

    return Agent(settings)


def _print_json(data: Any) -> None:
    _echo_json(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _comma_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _whole_numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in _comma_list(text)]
    except ValueError:
        message = f"expected whole numbers separated by commas, got {text!r}"
        raise typer.BadParameter(message, param_hint="--sizes") from None


# ----- ingest ------------------------------------------------------------------------------------


@contextmanager
def _progress_bar(*, unit: str) -> Iterator[Any]:
    """A callback ``(done, total, path)`` drawing a tqdm bar on stderr, closed on exit."""
    from tqdm import tqdm

    bars: list[Any] = []

    def update(done: int, total: int, path: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True))
        bar = bars[0]
        bar.set_postfix_str(terminal_text(Path(path).name), refresh=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def _say_on_stderr(message: str) -> None:
    typer.echo(message, err=True)


def _ingest(index: Index, paths: Sequence[Path], **options: Any) -> IngestReport:
    """Ingest with a progress bar and lock-wait messages on stderr, then estimate the corpus's signal
    weights, so that the first question does not wait for them."""
    with _progress_bar(unit="file") as progress:
        report = index.ingest(paths, progress=progress, on_wait=_say_on_stderr, **options)
    index.signal_weights()
    return report


def _print_report(report: IngestReport, *, as_json: bool) -> None:
    if as_json:
        _print_json(report.as_dict())
        return
    typer.echo(
        f"added: {len(report.added)}  unchanged: {len(report.unchanged)}  replaced: {len(report.replaced)}  "
        f"failed: {len(report.failed)}  ({report.chunks} chunks in {report.seconds:.1f}s)"
    )
    for path, reason in report.failed:
        typer.secho(f"  failed {terminal_text(path)}: {terminal_text(reason)}", fg="red")
    for path, note in report.notes:
        typer.secho(f"  note: {terminal_text(path)}: {terminal_text(note)}", fg="yellow")


@app.command()
@_reports_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to add (folders are walked).")],
    include: Annotated[list[str] | None, typer.Option(help="Only files matching this glob.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files matching this glob.")] = None,
    as_json: Annotated[bool, _flag("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add new files, replace changed ones, skip unchanged ones; exit code 1 if any file failed."""
    settings = load_settings()
    report = _ingest(_open_index(settings), paths, include=include or (), exclude=exclude or ())
    _print_report(report, as_json=as_json)
    if report.failed:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def demo() -> None:
    """Ingest the bundled demo corpus and show questions to try."""
    settings = load_settings()
    with as_file(files("retrieval") / "data" / "demo") as folder:
        report = _ingest(_open_index(settings), [folder], base=folder)
    _print_report(report, as_json=False)
    typer.echo("\nTry:")
    for question in DEMO_QUESTIONS:
        typer.echo(f'  multigrain ask "{question}"')
    typer.echo("\nOr open the web UI:  streamlit run app.py")


# ----- the index -----------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]], *, headers: Sequence[str] | None = None) -> str:
    cells = [[terminal_text(str(c)) for c in row] for row in ([headers] if headers else []) + list(rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


@app.command()
@_reports_errors
def docs(as_json: Annotated[bool, _flag("--json", help="Print a JSON list.")] = False) -> None:
    """List the documents in the index."""
    from retrieval import catalog

    profiles = catalog.documents(load_settings().index)
    if as_json:
        _print_json([asdict(p) for p in profiles])
    elif not profiles:
        typer.echo("The index is empty; add documents with `multigrain ingest PATH` or `multigrain demo`.")
    else:
        rows = [
            (d.doc_id, d.title, d.chunks, d.pages, ", ".join(d.keywords[:MAX_KEYWORDS])) for d in profiles
        ]
        typer.echo(_table(rows, headers=("doc_id", "title", "chunks", "pages", "keywords")))


@app.command()
@_reports_errors
def remove(doc_id: Annotated[str, typer.Argument(help="The id `multigrain docs` shows.")]) -> None:
    """Delete a document from the index."""
    if not _open_index(load_settings()).remove(doc_id):
        raise RetrievalError(f"no document {doc_id!r} in the index (see `multigrain docs`)")
    typer.echo(f"removed {terminal_text(doc_id)}")


@app.command()
@_reports_errors
def stats(as_json: Annotated[bool, _flag("--json", help="Print JSON.")] = False) -> None:
    """Counts of documents, chunks and sentences, and where the index lives."""
    from retrieval import catalog

    counts = catalog.stats(load_settings().index)
    if as_json:
        _print_json(counts)
    else:
        typer.echo(_table(list(counts.items())))


# ----- ask -----------------------------------------------------------------------------------------


def step_line(entry: TraceEntry) -> str:
    """One line about a finished step, e.g. ``✓ route  0.12s  kept 5 · confidence 0.8``."""
    if entry["skipped"]:
        return f"– {entry['step']}  skipped"
    facts = []
    for key, value in entry["outputs"].items():
        if isinstance(value, list):
            facts.append(f"{key} {len(value)}")
        elif isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
            facts.append(f"{key} {value}")
    if entry["llm_calls"]:
        facts.append(f"{entry['llm_calls']} LLM call{'s' if entry['llm_calls'] > 1 else ''}")
    mark = "!" if entry["degraded"] else "✓"
    line = f"{mark} {entry['step']}  {entry['seconds']:.2f}s  {' · '.join(facts)}".rstrip()
    return "\n".join([line, *(f"    degraded: {why}" for why in entry["degraded"])])


def citation_line(citation: Citation) -> str:
    """``[n] title (p. X) — verdict — "quote"``."""
    page = f" (p. {citation['page']})" if citation["page"] is not None else ""
    quote = citation["quote"]
    if len(quote) > MAX_QUOTE_CHARS:
        quote = quote[: MAX_QUOTE_CHARS - 1].rstrip() + "…"
    verdict = typer.style(citation["verdict"], fg=VERDICT_COLOURS.get(citation["verdict"]))
    title, quote = terminal_text(citation["title"]), terminal_text(quote)
    return f'[{citation["number"]}] {title}{page} — {verdict} — "{quote}"'


def _stream_answer(agent: Agent, question: str, thread: str | None) -> Answer:
    """Steps to stderr and the answer's tokens to stdout as they come; the final ``Answer``."""
    from agents.agent import Answer, ResetEvent, StepEvent, TokenEvent

    answer: Answer | None = None
    streamed: list[str] = []
    for event in agent.stream(question, thread_id=thread):
        if isinstance(event, StepEvent):
            typer.secho(terminal_text(step_line(event.entry)), err=True, dim=True)
        elif isinstance(event, ResetEvent):
            if streamed:
                typer.echo()
            typer.secho(f"↻ {terminal_text(event.reason)}", err=True, dim=True)
            streamed = []
        elif isinstance(event, TokenEvent):
            typer.echo(terminal_text(event.text), nl=False)
            streamed.append(event.text)
        elif isinstance(event, Answer):
            answer = event
    assert answer is not None, "Agent.stream ends with the Answer"
    if "".join(streamed).strip() != answer.text.strip():
        typer.secho("\nFinal answer:", bold=True)
        typer.echo(terminal_text(answer.text))
    return answer


def _print_sources(answer: Answer) -> None:
    typer.secho("\nSources", bold=True)
    for citation in answer.citations:
        typer.echo(citation_line(citation))
    if not answer.citations:
        typer.echo("(none)")
    for notice in answer.notices:
        typer.secho(f"note: {terminal_text(notice)}", fg="yellow")
    thread = terminal_text(answer.thread_id)
    typer.echo(f"thread: {thread}  (follow up with --thread {thread})")


@app.command()
@_reports_errors
@with_setting_flags(*STAGE_SWITCHES, *ASK_SIZES, *MODEL_FLAGS)
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    as_json: Annotated[bool, _flag("--json", help="Print only the answer as JSON.")] = False,
    thread: Annotated[str | None, typer.Option(help="Continue the conversation with this id.")] = None,
    show_trace: Annotated[bool, _flag("--show-trace", help="Print the trace JSON on stderr.")] = False,
    *,
    overrides: dict[str, Any],
) -> None:
    """Answer a question from the indexed documents, with checked citations."""
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    agent = _open_agent(load_settings(overrides))
    if as_json:
        answer = agent.ask(question, thread_id=thread)
        _echo_json(answer.to_json())
    else:
        answer = _stream_answer(agent, question, thread)
        _print_sources(answer)
    if show_trace:
        _echo_json(json.dumps(answer.trace, indent=2, ensure_ascii=False), err=True)


# ----- evaluation and benchmarks -------------------------------------------------------------------


@app.command("eval")
@_reports_errors
@with_setting_flags(*MODEL_FLAGS)
def evaluate(
    dataset_dir: Annotated[Path, typer.Argument(help="A dataset folder (corpus, queries, qrels).")],
    out: Annotated[Path | None, typer.Option(help="Where results go; default <home>/eval/<dataset>.")] = None,
    ablate: Annotated[str | None, typer.Option(help=ABLATE_HELP)] = None,
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate a seeded sample of N queries (kept in dataset order).")
    ] = None,
    as_json: Annotated[bool, _flag("--json", help="Print the results as JSON.")] = False,
    *,
    overrides: dict[str, Any],
) -> None:
    """Score retrieval and answers on a dataset, with optional ablations; writes results files."""
    from evaluation.runner import run_eval

    settings = load_settings(overrides)
    out_dir = out or settings.home / "eval" / dataset_dir.name
    results = run_eval(
        dataset_dir, settings=settings, out_dir=out_dir, ablate=_comma_list(ablate), max_queries=max_queries
    )
    if as_json:
        _print_json(results)
    else:
        typer.echo((out_dir / "results.md").read_text(encoding="utf-8"))


@bench_app.command("ingest")
@_reports_errors
def bench_ingest(
    dataset_dir: Annotated[Path, typer.Argument(help="A dataset folder whose corpus is ingested.")],
    max_docs: Annotated[int | None, typer.Option(help="Ingest only the first N documents.")] = None,
    repeat: Annotated[
        int, typer.Option(min=1, help="Time each side this many times and keep the fastest (best of N).")
    ] = 1,
    as_json: Annotated[bool, _flag("--json", help="Print the measurements as JSON.")] = False,
) -> None:
    """Time ingestion of a dataset's corpus against the bare embedding model."""
    from evaluation.bench import run_ingest_bench

    results = run_ingest_bench(
        dataset_dir, settings=load_settings(), max_docs=max_docs, repeat=repeat, show=not as_json
    )
    if as_json:
        _print_json(results)


@bench_app.command("query")
@_reports_errors
def bench_query(
    sizes: Annotated[str, typer.Option(help="Corpus sizes in chunks, comma-separated.")] = DEFAULT_SIZES,
    queries: Annotated[int, typer.Option(help="Queries timed at each size.")] = 20,
    as_json: Annotated[bool, _flag("--json", help="Print the measurements as JSON.")] = False,
) -> None:
    """Time searches on synthetic indexes of growing size."""
    from evaluation.bench import run_query_bench

    sizes_list = _whole_numbers(sizes)
    results = run_query_bench(settings=load_settings(), sizes=sizes_list, queries=queries, show=not as_json)
    if as_json:
        _print_json(results)


@bench_app.command("startup")
def bench_startup(
    runs: Annotated[int, typer.Option(min=1, help="Fresh processes timed per command.")] = 5,
    as_json: Annotated[bool, _flag("--json", help="Print the measurements as JSON.")] = False,
) -> None:
    """Time `multigrain --help`, `docs` and `stats` on an empty index beside a bare `python -c pass`."""
    from agents._startup_bench import measure_startup, startup_table

    results = measure_startup(runs=runs)
    if as_json:
        _print_json(results)
    else:
        typer.echo(startup_table(results))


def main() -> None:
    """The ``multigrain`` console script."""
    app()
