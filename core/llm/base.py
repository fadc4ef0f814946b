"""The one interface every model backend implements."""
from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod

from core.errors import ModelError
from core.models import Completion, TokenLogprobs

Messages = list[dict[str, str]]  # OpenAI-style [{"role": ..., "content": ...}]


class LLM(ABC):
    """Chat, optionally constrained to a JSON schema. `id` names backend and model, and
    keys caches; `calls` counts the model calls this object made, so tests can prove a
    cache hit made none."""

    id: str = ""

    @staticmethod
    def label(cfg) -> str:
        """A short human name for a configuration of this backend, loading nothing and
        holding no credential (labels are stored, shown and exported)."""
        raise NotImplementedError

    @staticmethod
    def identity(cfg) -> dict:
        """What makes this backend's model under `cfg` a different judge from another: keys
        judge checks and caches."""
        raise NotImplementedError

    def __init__(self):
        self.calls = 0
        self._count_lock = threading.Lock()

    def complete(self, messages: Messages, *, schema: dict | None = None, max_tokens: int = 384,
                 temperature: float = 0.0) -> Completion:
        """One model call; with `schema`, the text is JSON that follows it. Raises ModelError."""
        with self._count_lock:
            self.calls += 1
        return self._complete(messages, schema=schema, max_tokens=max_tokens, temperature=temperature)

    async def acomplete(self, messages: Messages, *, schema: dict | None = None, max_tokens: int = 384,
                        temperature: float = 0.0) -> Completion:
        """`complete` for an event loop: many calls can be in flight at once (an endpoint's on
        one async HTTP client; a local model's in a thread, one at a time)."""
        with self._count_lock:
            self.calls += 1
        return await self._acomplete(messages, schema=schema, max_tokens=max_tokens, temperature=temperature)

    @abstractmethod
    def _complete(self, messages: Messages, *, schema: dict | None, max_tokens: int,
                  temperature: float) -> Completion:
        ...

    async def _acomplete(self, messages: Messages, *, schema: dict | None, max_tokens: int,
                         temperature: float) -> Completion:
        return await asyncio.to_thread(self._complete, messages, schema=schema, max_tokens=max_tokens,
                                       temperature=temperature)

    async def aclose(self) -> None:
        """Let go of what this event loop's calls opened (an endpoint's connections)."""

    def continuation_logprobs(self, messages: Messages, continuation: str) -> TokenLogprobs:
        """The log-probability of each token of `continuation` as the assistant's reply to
        `messages` (no generation). Backends that cannot say raise ModelError."""
        with self._count_lock:
            self.calls += 1
        return self._continuation_logprobs(messages, continuation)

    def _continuation_logprobs(self, messages: Messages, continuation: str) -> TokenLogprobs:
        raise ModelError(f"{self.id} cannot report token log-probabilities; the likelihood judge needs an "
                         "embedded (GGUF) judge model, or choose the RAGAS faithfulness judge")
