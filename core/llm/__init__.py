"""Model backends behind one interface (`LLM.complete`). A backend is one module and one
entry in BACKENDS; the embedded model and an endpoint differ only in configuration."""
from __future__ import annotations

from functools import lru_cache

from core.config import ModelConfig, redact_url
from core.llm.base import LLM, Messages
from core.llm.embedded import EmbeddedLLM
from core.llm.openai_compat import OpenAICompatLLM

BACKENDS = {"embedded": EmbeddedLLM, "openai": OpenAICompatLLM}

__all__ = ["LLM", "Messages", "BACKENDS", "get_llm", "label"]


@lru_cache(maxsize=16)
def get_llm(cfg: ModelConfig, threads: int = 2) -> LLM:
    """The process-wide model object for a configuration (loaded once)."""
    return BACKENDS[cfg.backend](model=cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
                                 timeout_s=cfg.timeout_s, n_ctx=cfg.n_ctx, threads=threads, retries=cfg.retries,
                                 backoff_s=cfg.backoff_s, backoff_max_s=cfg.backoff_max_s)


def label(cfg: ModelConfig) -> str:
    """A short human name for a configuration, without loading anything (and without any
    credential the endpoint URL holds: labels are stored, shown and exported)."""
    if cfg.backend == "openai":
        return f"openai:{cfg.model}@{redact_url(cfg.base_url.rstrip('/'))}"
    from pathlib import Path

    from core.llm.embedded import default_gguf

    return f"embedded:{Path(cfg.model or default_gguf()).name}"
