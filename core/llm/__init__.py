"""Model backends behind one interface (`LLM.complete`). A backend is one module (its class
names, labels and identifies its configurations) and one entry in BACKENDS; the embedded
model and an endpoint differ only in configuration."""
from __future__ import annotations

from functools import lru_cache

from core.config import ModelConfig, Settings
from core.llm.base import LLM, Messages
from core.llm.embedded import EmbeddedLLM
from core.llm.openai_compat import OpenAICompatLLM

BACKENDS = {"embedded": EmbeddedLLM, "openai": OpenAICompatLLM}

__all__ = ["LLM", "Messages", "BACKENDS", "get_llm", "identity", "label"]


@lru_cache(maxsize=16)
def get_llm(cfg: ModelConfig, threads: int = Settings.threads) -> LLM:
    """The process-wide model object for a configuration (loaded once)."""
    return BACKENDS[cfg.backend](model=cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
                                 timeout_s=cfg.timeout_s, n_ctx=cfg.n_ctx, threads=threads, retries=cfg.retries,
                                 backoff_s=cfg.backoff_s, backoff_max_s=cfg.backoff_max_s)


def label(cfg: ModelConfig) -> str:
    """A short human name for a configuration, without loading anything (and without any
    credential the endpoint URL holds: labels are stored, shown and exported)."""
    return BACKENDS[cfg.backend].label(cfg)


def identity(cfg: ModelConfig) -> dict:
    """The backend and what tells its model apart (a GGUF's content hash, an endpoint's model
    and URL without credentials)."""
    return {"backend": cfg.backend, **BACKENDS[cfg.backend].identity(cfg)}
