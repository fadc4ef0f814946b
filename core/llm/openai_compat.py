"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, LM Studio, llama.cpp's server.

The API key is read from the environment variable the settings name, at connect time,
and is never stored or echoed."""
from __future__ import annotations

import os
import time

from core.errors import ModelError
from core.llm.base import LLM, Messages
from core.models import Completion


class OpenAICompatLLM(LLM):
    """A model behind an OpenAI-compatible /chat/completions endpoint."""

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, **_):
        import openai

        super().__init__()
        self.model, self.base_url = model, base_url.rstrip("/")
        self.id = f"openai:{model}@{self.base_url}"
        key = os.environ.get(api_key_env) or "no-key"  # local servers accept any key
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=2)
        # Servers spell structured output two ways: OpenAI's json_schema, or llama.cpp-style
        # json_object with a schema. Start with the standard and remember what worked.
        self._schema_style = "json_schema"

    def _complete(self, messages: Messages, *, schema, max_tokens, temperature) -> Completion:
        import openai

        t0 = time.perf_counter()
        try:
            try:
                r = self._create(messages, schema, max_tokens, temperature)
            except openai.APIStatusError as e:
                # 400/422 from most servers; llama-cpp-python's answers 500 naming response_format
                refused = e.status_code in (400, 422) or "response_format" in str(e.message)
                if schema is None or self._schema_style != "json_schema" or not refused:
                    raise
                self._schema_style = "json_object"
                r = self._create(messages, schema, max_tokens, temperature)
        except openai.APITimeoutError:
            raise ModelError(f"{self.base_url} did not answer in time (model {self.model})") from None
        except openai.APIConnectionError as e:
            raise ModelError(f"cannot reach {self.base_url}: {e.__cause__ or e}") from None
        except openai.APIStatusError as e:
            raise ModelError(f"{self.base_url} answered {e.status_code} for model {self.model}: "
                             f"{_short(e.message)}") from None
        usage = r.usage
        return Completion(text=r.choices[0].message.content or "", model=self.id,
                          prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                          completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                          latency_s=time.perf_counter() - t0)

    def _create(self, messages, schema, max_tokens, temperature):
        kwargs = {}
        if schema is not None:
            kwargs["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
                if self._schema_style == "json_schema" else {"type": "json_object", "schema": schema})
        return self._client.chat.completions.create(model=self.model, messages=messages, max_tokens=max_tokens,
                                                    temperature=temperature, **kwargs)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"
