"""Settings of the index: where it lives, how documents are cut and embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class EmbeddingConfig(BaseModel):
    """Which embedding model turns text into vectors."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["onnx", "openai"] = Field(
        "onnx", description="'onnx': local all-MiniLM-L6-v2 int8; 'openai': an OpenAI-compatible /embeddings."
    )
    model: str = Field("text-embedding-3-small", description="Model name for the 'openai' backend.")
    base_url: str | None = Field(None, description="Base URL of the /embeddings endpoint ('openai' backend).")
    api_key: SecretStr | None = Field(None, description="API key for the 'openai' backend.")
    batch_size: int = Field(32, ge=1, le=1024, description="Texts per model call.")
    max_tokens: int = Field(
        256, ge=16, le=512, description="Word pieces the ONNX model reads per text; chunks are cut to fit it."
    )
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 lets it choose.")


class ChunkingConfig(BaseModel):
    """How documents are cut into chunks."""

    model_config = ConfigDict(extra="forbid")

    chunk_tokens: int = Field(
        200,
        ge=16,
        le=4096,
        description=(
            "Chunk size in cl100k tokens; with the local model a chunk also fits its window (max_tokens word "
            "pieces, title and section included)."
        ),
    )
    overlap_tokens: int = Field(40, ge=0, description="Tokens shared by neighbouring chunks.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self


class IndexConfig(BaseModel):
    """Where the index lives and what it accepts."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(Path(".multigrain"), description="Folder for Chroma, BM25, checkpoints and caches.")
    chroma_host: str | None = Field(None, description="Chroma server host; unset means embedded on disk.")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")
    chroma_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for one answer from the Chroma server before giving up."
    )
    collection_prefix: str = Field("mg", description="Prefix of the Chroma collection names.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused.")
    lock_timeout_s: float = Field(600.0, ge=0, description="How long an ingest waits for another one.")
    embed_sentences: bool = Field(True, description="Embed every sentence too (used by routing and rerank).")
    sentence_vectors: Literal["late", "separate"] = Field(
        "late",
        description=(
            "'late': a sentence's vector is pooled from its chunk's own model pass, so ingest costs about "
            "the chunks alone, and the stages that weigh single sentences read their candidates alone at "
            "question time (once per text per agent); 'separate': each sentence is embedded alone too "
            "(about 1.6 times the model work at ingest). The 'openai' embedding backend has no token states "
            "and always embeds sentences separately."
        ),
    )
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
