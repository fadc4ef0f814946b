"""A scripted model for unit tests of orchestration, shipped beside the real backends."""
from __future__ import annotations

import json
from collections.abc import Callable

from core.llm.base import LLM, Messages
from core.models import Completion


class FakeLLM(LLM):
    """Answers with `respond(messages, schema)`; a str is returned as is, anything else as JSON."""

    def __init__(self, respond: Callable[[Messages, dict | None], object], id: str = "fake:model"):
        super().__init__()
        self.respond, self.id = respond, id

    def _complete(self, messages: Messages, *, schema, max_tokens, temperature) -> Completion:
        out = self.respond(messages, schema)
        text = out if isinstance(out, str) else json.dumps(out)
        return Completion(text=text, model=self.id, prompt_tokens=len(str(messages)) // 4,
                          completion_tokens=len(text) // 4, latency_s=0.0)
