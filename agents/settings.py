"""One settings object, nested by concern, read from MULTIGRAIN_* and the usual OPENAI_* variables."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, computed_field, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.errors import ConfigError
from retrieval.config import IndexConfig


class LLMConfig(BaseModel):
    """Which chat model to call, and how patiently."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API base URL, e.g. http://127.0.0.1:8080/v1; unset means OpenAI.",
    )
    api_key: SecretStr | None = Field(default=None, description="API key; local servers usually need none.")
    model: str = Field(default="gpt-4o-mini", description="Model name sent with every request.")
    timeout_s: float = Field(default=60.0, gt=0, description="Seconds to wait for one reply before retrying.")
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Retries after a timeout, connection error, 429 or 5xx."
    )
    backoff_s: float = Field(
        default=0.5, ge=0, description="First retry delay; doubles each retry, capped at 10 s."
    )
    temperature: float = Field(
        default=0.0, ge=0, le=2, description="Sampling temperature; 0 gives repeatable answers."
    )
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        default="auto",
        description="How JSON replies are requested; 'auto' tries json_schema, json_object, then the prompt.",
    )
    price_in_per_mtok: float = Field(
        default=0.0, ge=0, description="USD per million prompt tokens, for cost reports."
    )
    price_out_per_mtok: float = Field(
        default=0.0, ge=0, description="USD per million completion tokens, for cost reports."
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=64, description="Most requests this client has in flight at once."
    )

    @property
    def enabled(self) -> bool:
        """Whether a model endpoint is configured at all (a base URL or an API key)."""
        return bool(self.base_url) or self.api_key is not None


ENV_PREFIX = "MULTIGRAIN_"
OPENAI_VARIABLES = {"OPENAI_API_KEY": "api_key", "OPENAI_BASE_URL": "base_url"}
# Fields of IndexConfig set at the top level of the settings, as ``home`` and MULTIGRAIN_HOME.
TOP_LEVEL_INDEX_FIELDS = ("home", "chroma_host", "chroma_port")


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _stage_switch(stage: str, *, when_off: str | None = None) -> Any:
    """A stage's ``enabled`` field; ``when_off`` says what happens instead (``--no-<stage>`` shows it)."""
    off = f"; off means {when_off}" if when_off else ""
    extra: JsonDict | None = {"when_off": when_off} if when_off else None
    return Field(True, description=f"Run the {stage} stage{off}.", json_schema_extra=extra)


class ExpandConfig(_Stage):
    """Query expansion: rewrites, pseudo-documents, follow-up resolution."""

    enabled: bool = _stage_switch("expand")
    rewrites: int = Field(3, ge=0, le=8, description="Rewrites of the question.")
    pseudo_docs: int = Field(
        1, ge=0, le=4, description="query2doc pseudo-documents (LLM) or feedback passages (offline)."
    )
    feedback_k: int = Field(
        5, ge=1, le=20, description="Offline: first-pass passages used as pseudo-relevance feedback."
    )
    expansion_terms: int = Field(
        12, ge=0, le=40, description="Offline: RM3-style terms added to the keyword query."
    )
    question_repeats: int = Field(
        3, ge=1, le=10, description="MuGI: times the question is repeated beside pseudo-docs."
    )


class RouteConfig(_Stage):
    """Coarse grain: which documents may be searched."""

    enabled: bool = _stage_switch("route", when_off="search the whole corpus")
    min_docs: int = Field(5, ge=1, description="Fewest documents kept.")
    max_docs: int = Field(30, ge=1, description="Most documents kept.")
    candidates: int = Field(100, ge=1, description="Documents scored by each signal before fusion.")
    chunk_probe_k: int = Field(
        50, ge=0, description="Corpus-wide chunks whose best scores vote for their documents."
    )
    low_confidence: float = Field(0.2, ge=0, le=1, description="Below this confidence the search widens.")
    widen_factor: int = Field(3, ge=1, description="How many times more documents a widened search keeps.")
    llm_judge: bool = Field(
        False, description="With an LLM: let it choose among the top candidates' profiles."
    )

    @model_validator(mode="after")
    def _bounds(self) -> RouteConfig:
        if self.min_docs > self.max_docs:
            raise ValueError(
                f"route.min_docs ({self.min_docs}) must not exceed route.max_docs ({self.max_docs})"
            )
        return self


class RetrieveConfig(_Stage):
    """Fine grain: chunks inside the routed documents."""

    k: int = Field(20, ge=1, le=200, description="Chunks handed to rerank.")
    per_variant_k: int = Field(30, ge=1, description="Chunks fetched per query variant and per method.")
    dense: bool = Field(True, description="Use dense search.")
    bm25: bool = Field(True, description="Use BM25.")
    neighbours: bool = Field(False, description="Add the chunks next to each hit.")
    linked_docs: int = Field(
        5,
        ge=0,
        le=20,
        description="Documents named in the question or the top passages that join the candidates (0: off).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    signal_weights: bool = Field(
        True, description="Weight BM25 and dense search as estimated on the corpus (off: equal weights)."
    )


class RerankConfig(_Stage):
    """Reranking of the retrieved chunks."""

    enabled: bool = _stage_switch("rerank")
    k: int = Field(8, ge=1, le=50, description="Passages handed to the answer stage.")
    mode: Literal["listwise", "pointwise"] = Field("listwise", description="LLM reranking style.")
    window: int = Field(10, ge=2, le=40, description="Passages per LLM call.")
    chain: bool = Field(
        True, description="Order evidence along title links: a named document first, what it names next."
    )
    drill_down: bool = Field(
        True,
        description="Search the best document's own sentences and rows; the best one's passage comes second.",
    )


class AnswerConfig(_Stage):
    """The cited answer."""

    max_sentences: int = Field(
        2, ge=1, le=20, description="Offline: most sentences quoted in an extractive answer."
    )
    min_support: float = Field(
        0.35, ge=0, le=1, description="Offline: least similarity for a sentence to be quoted."
    )
    quote_passages: int = Field(
        1, ge=1, le=50, description="Offline: how many of the best passages the extractive answer quotes."
    )
    max_tokens: int = Field(600, ge=50, description="LLM: longest answer.")
    decline: bool = Field(
        True, description="Offline: decline when the best quote is about another subject or barely related."
    )


class VerifyConfig(_Stage):
    """The check of every cited sentence."""

    enabled: bool = _stage_switch("verify")
    supported: float = Field(
        0.6, ge=0, le=1, description="Support score at or above which a sentence is supported."
    )
    partial: float = Field(
        0.4, ge=0, le=1, description="Support score at or above which a sentence is partial."
    )
    retries: int = Field(1, ge=0, le=3, description="Times an unsupported answer goes back with feedback.")
    llm_judge: bool = Field(True, description="With an LLM: one batched entailment call.")


class Settings(BaseSettings):
    """Every setting of Multigrain; environment variables MULTIGRAIN_<GROUP>__<FIELD> override defaults.

    The index's ``home``, ``chroma_host`` and ``chroma_port`` are also accepted at the top level (as in
    ``{"home": ...}`` and MULTIGRAIN_HOME), where users expect them; ``IndexConfig`` alone defines them.
    """

    model_config = SettingsConfigDict(env_prefix="MULTIGRAIN_", env_nested_delimiter="__", extra="forbid")

    max_llm_calls: int = Field(24, ge=1, description="Hard budget of LLM calls per question.")
    strict: bool = Field(False, description="Raise instead of degrading a stage that fails.")
    deadline_s: float = Field(
        120.0,
        gt=0,
        description="Seconds one question may spend on model calls and retries; after it, stages degrade.",
    )
    index: IndexConfig = Field(default_factory=IndexConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    expand: ExpandConfig = Field(default_factory=ExpandConfig)
    route: RouteConfig = Field(default_factory=RouteConfig)
    retrieve: RetrieveConfig = Field(default_factory=RetrieveConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)

    @model_validator(mode="before")
    @classmethod
    def _top_level_index_fields(cls, data: Any) -> Any:
        return _canonical(data) if isinstance(data, Mapping) else data

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects it
    @property
    def home(self) -> Path:
        """The data folder: the index, conversations, uploads and evaluation runs live under it."""
        return self.index.home

    @property
    def offline(self) -> bool:
        """True when no LLM endpoint is configured."""
        return not self.llm.enabled


def load_settings(
    source: Settings | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from a ``Settings``, from a dict of overrides, or from nothing but the environment.

    A ``Settings`` is returned as it is, or validated again with ``overrides`` applied; the environment is
    not read. Otherwise the layers are defaults, then OPENAI_API_KEY and OPENAI_BASE_URL, then MULTIGRAIN_*,
    then ``source`` and ``overrides``. ``environ`` replaces ``os.environ`` as the source of those
    variables. An unknown MULTIGRAIN_* variable is a ``ConfigError`` that names it and the closest real one.
    """
    if isinstance(source, Settings):
        if not overrides:
            return source
        updated = _deep_merge(_canonical(source.model_dump()), _canonical(overrides))
        return _validated(lambda: Settings.model_validate(updated))
    env = os.environ if environ is None else environ
    layers = [_openai_values(env), _environment_values(env), source or {}, overrides or {}]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _deep_merge(merged, _canonical(layer))
    return _validated(lambda: Settings(**merged))


def _validated(build: Callable[[], Settings]) -> Settings:
    """``build()``, its validation errors turned into one ``ConfigError`` naming each field."""
    try:
        return build()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc


def _canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the top-level ``home``, ``chroma_host`` and ``chroma_port`` moved into ``index``."""
    moved = {name: values[name] for name in TOP_LEVEL_INDEX_FIELDS if name in values}
    if not moved:
        return dict(values)
    index = values.get("index") or {}
    if isinstance(index, BaseModel):
        index = index.model_dump(exclude_unset=True)
    twice = [name for name, value in moved.items() if name in index and str(index[name]) != str(value)]
    if twice:
        raise ConfigError(f"{twice[0]} and index.{twice[0]} are both set, to different values; set one")
    rest = {key: value for key, value in values.items() if key not in moved}
    return rest | {"index": {**index, **moved}}


def _openai_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The OpenAI client's usual variables, as the ``llm`` settings they stand for."""
    llm: dict[str, Any] = {field: env[name] for name, field in OPENAI_VARIABLES.items() if env.get(name)}
    if "api_key" in llm:
        llm["api_key"] = SecretStr(llm["api_key"])
    return {"llm": llm} if llm else {}


def _environment_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The MULTIGRAIN_* variables of ``env`` as nested settings; a group's variable holds a JSON object."""
    variables = setting_variables()
    values: dict[str, Any] = {}
    for name, raw in env.items():
        setting = variables.get(name.upper())
        if setting is None:
            if name.upper().startswith(ENV_PREFIX):
                raise ConfigError(_unknown_variable(name, variables))
            continue
        value: Any = raw
        if setting.group is not None:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name} must be a JSON object of settings: {exc}") from exc
        values = _deep_merge(values, _nested(setting.path, value))
    return values


def _unknown_variable(name: str, variables: Mapping[str, _Setting]) -> str:
    known = [variable.removeprefix(ENV_PREFIX) for variable, s in variables.items() if s.group is None]
    close = difflib.get_close_matches(name.upper().removeprefix(ENV_PREFIX), known, n=1)
    hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "no setting has a name like it."
    return f"unknown setting variable {name}: {hint} The README's configuration table lists every variable."


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(path[1:]):
        value = {key: value}
    return {path[0]: value}


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _Setting(NamedTuple):
    path: tuple[str, ...]
    field: FieldInfo
    group: type[BaseModel] | None


def _walk(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[_Setting]:
    """Each setting, groups before their fields; the index's home and Chroma address are set at the top."""
    if model is Settings:
        for name in TOP_LEVEL_INDEX_FIELDS:
            yield _Setting((name,), IndexConfig.model_fields[name], None)
    for name, field in model.model_fields.items():
        if model is IndexConfig and name in TOP_LEVEL_INDEX_FIELDS:
            continue
        annotation = field.annotation
        group = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        yield _Setting((*path, name), field, group)
        if group is not None:
            yield from _walk(group, (*path, name))


def variable_name(path: tuple[str, ...]) -> str:
    """The environment variable of the setting at ``path``, e.g. MULTIGRAIN_RERANK__K."""
    return ENV_PREFIX + "__".join(path).upper()


@cache
def setting_variables() -> dict[str, _Setting]:
    """Every MULTIGRAIN_* variable and the setting (or whole group, as JSON) it sets."""
    return {variable_name(setting.path): setting for setting in _walk(Settings)}


def settings_table() -> str:
    """The Markdown table of every setting, its environment variable and default (kept in the README)."""
    rows = ["| environment variable | default | what it does |", "| --- | --- | --- |"]
    for path, field, group in _walk(Settings):
        if group is not None:
            continue
        default = "(unset)" if field.default is None else f"`{field.default}`"
        if field.default_factory is not None:
            default = "(nested)"
        rows.append(f"| `{variable_name(path)}` | {default} | {field.description} |")
    return "\n".join(rows)
