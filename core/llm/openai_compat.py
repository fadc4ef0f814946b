"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, LM Studio, llama.cpp's server.

The API key is read from the environment variable the settings name, at connect time,
and is never stored or echoed. The client calls the real base URL; everything this module
says about the endpoint (its id, which labels answers and keys the judge cache, and every
error message) names it by `redact_url`, so a key written into the URL goes nowhere else.

Every failure is converted here, at the boundary, into a ModelError a user can read:
a TransientModelError when it may pass (unreachable, timeout, 429, 5xx, reset connection,
a malformed response) and a plain ModelError when the request itself is refused (400,
422: e.g. a prompt too long). Transient failures are retried with `tenacity` (exponential
backoff with jitter, a server's Retry-After honoured, each wait capped): the openai
client's own retry is off, because it does not retry a malformed response and its delays
cannot be configured.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from pydantic import BaseModel
from tenacity import AsyncRetrying, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from core.config import redact_url
from core.errors import ModelError, TransientModelError
from core.llm.base import LLM, Messages
from core.models import Completion

TRANSIENT_STATUS = {408, 409, 429}  # and every 5xx
REFUSED_STATUS = {401, 403, 404}  # retrying at once cannot help; a resume after fixing the setting can


class OpenAICompatLLM(LLM):
    """A model behind an OpenAI-compatible /chat/completions endpoint."""

    @staticmethod
    def label(cfg) -> str:
        return f"openai:{cfg.model}@{redact_url(cfg.base_url.rstrip('/'))}"

    @staticmethod
    def identity(cfg) -> dict:
        return {"model": cfg.model, "base_url": redact_url(cfg.base_url.rstrip("/"))}  # stored: no key

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, retries: int = 3, backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 **_):
        import openai

        super().__init__()
        self.model, self.api_key_env = model, api_key_env
        self.base_url = redact_url(base_url.rstrip("/"))  # what messages and ids say
        self.timeout_s = timeout_s
        self.id = f"openai:{model}@{self.base_url}"
        key = os.environ.get(api_key_env) or "no-key"  # local servers accept any key
        self._connect = dict(base_url=base_url.rstrip("/"), api_key=key, timeout=timeout_s, max_retries=0)
        self._client = openai.OpenAI(**self._connect)
        self._aclients: dict = {}  # event loop -> its AsyncOpenAI client (an async client belongs to one loop)
        retry = dict(
            retry=retry_if_exception(lambda e: isinstance(e, TransientModelError) and e.backoff),
            stop=stop_after_attempt(retries + 1),
            wait=_WaitRetryAfter(wait_exponential_jitter(multiplier=backoff_s, max=backoff_max_s, jitter=backoff_s / 2),
                                 cap=backoff_max_s),
            reraise=True)
        self._retrying, self._aretrying = Retrying(**retry), AsyncRetrying(**retry)
        # Servers spell structured output two ways: OpenAI's json_schema, or llama.cpp-style
        # json_object with a schema. Start with the standard and remember what worked.
        self._schema_style = "json_schema"

    def _complete(self, messages: Messages, *, schema, max_tokens, temperature) -> Completion:
        t0 = time.perf_counter()
        retrying = self._retrying.copy()  # its per-call statistics must not be shared between threads
        with _counting_tries(retrying):
            text, prompt_tokens, completion_tokens = retrying(self._attempt, messages, schema, max_tokens, temperature)
        return Completion(text=text, model=self.id, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, latency_s=time.perf_counter() - t0)

    async def _acomplete(self, messages: Messages, *, schema, max_tokens, temperature) -> Completion:
        t0 = time.perf_counter()
        retrying = self._aretrying.copy()  # its per-call statistics must not be shared between calls
        with _counting_tries(retrying):
            text, prompt_tokens, completion_tokens = await retrying(self._aattempt, messages, schema, max_tokens,
                                                                    temperature)
        return Completion(text=text, model=self.id, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, latency_s=time.perf_counter() - t0)

    def _attempt(self, messages, schema, max_tokens, temperature) -> tuple[str, int, int]:
        """One HTTP call, every failure converted into a ModelError."""
        import openai

        with self._converted():
            try:
                r = self._create(self._client, messages, schema, max_tokens, temperature)
            except openai.APIStatusError as e:
                if not self._other_schema_style(e, schema):
                    raise
                r = self._create(self._client, messages, schema, max_tokens, temperature)
        return self._read(r)

    async def _aattempt(self, messages, schema, max_tokens, temperature) -> tuple[str, int, int]:
        """`_attempt` on this event loop's async client."""
        import openai

        client = self._async_client()
        with self._converted():
            try:
                r = await self._create(client, messages, schema, max_tokens, temperature)
            except openai.APIStatusError as e:
                if not self._other_schema_style(e, schema):
                    raise
                r = await self._create(client, messages, schema, max_tokens, temperature)
        return self._read(r)

    def _async_client(self):
        """The running loop's async client, made on its first call: one connection pool per loop,
        reused by every call on it (a client's connections cannot move to another loop)."""
        import openai

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            self._aclients = {lp: c for lp, c in self._aclients.items() if not lp.is_closed()}
            client = self._aclients[loop] = openai.AsyncOpenAI(**self._connect)
        return client

    async def aclose(self) -> None:
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def _other_schema_style(self, e, schema) -> bool:
        """Whether a refusal was of the json_schema style of structured output; if so, the
        llama.cpp style is used from now on (and the call is made again)."""
        # 400/422 from most servers; llama-cpp-python's answers 500 naming response_format
        refused = e.status_code in (400, 422) or "response_format" in str(e.message)
        if schema is None or self._schema_style != "json_schema" or not refused:
            return False
        self._schema_style = "json_object"
        return True

    @contextmanager
    def _converted(self):
        """Every failure of one HTTP call as the ModelError a user can read."""
        import openai

        try:
            yield
        except openai.APITimeoutError:
            raise TransientModelError(f"{self.base_url} did not answer within {self.timeout_s:g} s (model "
                                      f"{self.model}); the TIMEOUT setting of this model sets the limit") from None
        except openai.APIConnectionError as e:
            raise TransientModelError(self._connection_error(e)) from None
        except openai.APIStatusError as e:
            raise self._status_error(e) from None
        except (json.JSONDecodeError, openai.APIResponseValidationError):
            raise TransientModelError(f"{self.base_url} sent a response that is not valid JSON (model "
                                      f"{self.model})") from None

    def _status_error(self, e) -> ModelError:
        status, detail = e.status_code, _short(_scrub(_text_of(e)))
        if status == 429:
            after = _retry_after(e.response.headers)
            return TransientModelError(f"{self.base_url} is limiting requests (429 Too Many Requests) for model "
                                       f"{self.model}: {detail}", retry_after=after)
        if status in TRANSIENT_STATUS or status >= 500:
            return TransientModelError(f"{self.base_url} answered {status} (a server error) for model "
                                       f"{self.model}: {detail}", retry_after=_retry_after(e.response.headers))
        if status in (401, 403):
            return TransientModelError(f"{self.base_url} refused the API key ({status}) for model {self.model}: "
                                       f"check the key in {self.api_key_env}", backoff=False)
        if status == 404:
            return TransientModelError(f"{self.base_url} answered 404 for model {self.model}: check the base URL "
                                       "(usually ending in /v1) and the model name", backoff=False)
        return ModelError(f"{self.base_url} refused the request ({status}) for model {self.model}: {detail}")

    def _connection_error(self, e) -> str:
        # the sync client names the cause at once; the async one wraps it in layers with empty messages
        causes, x = [], e.__cause__
        while x is not None and len(causes) < 8:
            causes.append(x)
            x = x.__cause__ or x.__context__
        cause = _scrub(next((str(c).strip() for c in causes if str(c).strip()), ""))
        if any(isinstance(c, ConnectionResetError) for c in causes) or \
                any(w in cause.lower() for w in ("disconnected", "reset", "closed")):
            return f"{self.base_url} closed the connection without answering (model {self.model})"
        return f"cannot reach {self.base_url}: {cause or 'the connection failed'}"

    def _read(self, r) -> tuple[str, int, int]:
        """The text and token counts of a chat completion; anything else is a malformed response."""
        if isinstance(r, str):  # the client hands back a body that is not JSON as text
            page = r.lstrip()[:200].lower()
            what = "an HTML page" if page.startswith(("<!doctype html", "<html")) or "<html" in page else "plain text"
            raise TransientModelError(f"{self.base_url} answered with {what} instead of a chat completion "
                                      f"(model {self.model}); check that the base URL is the API's")
        choices = getattr(r, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise TransientModelError(f"{self.base_url} sent a response without any choices (model {self.model})")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if not hasattr(message, "content") or not isinstance(content, (str, type(None))):
            raise TransientModelError(f"{self.base_url} sent a chat completion without a message (model "
                                      f"{self.model})")
        usage = getattr(r, "usage", None)  # optional; the client makes an object of it when it is one
        counts = [getattr(usage, k, 0) or 0 for k in ("prompt_tokens", "completion_tokens")]
        well_formed = usage is None or isinstance(usage, BaseModel)
        if not well_formed or not all(isinstance(n, int) and n >= 0 for n in counts):
            raise TransientModelError(f"{self.base_url} sent token counts that are not numbers (model "
                                      f"{self.model})")
        return content or "", counts[0], counts[1]

    def _create(self, client, messages, schema, max_tokens, temperature):
        """The chat completion call, on the sync or the async client. Its body is posted as it is:
        `chat.completions.create` first walks all of it (prompt, schema) against its typed
        parameters, a third of the client's time per call, for a body that is plain JSON already."""
        from openai.types.chat import ChatCompletion

        return client.post("/chat/completions", body=self._request(messages, schema, max_tokens, temperature),
                           cast_to=ChatCompletion)

    def _request(self, messages, schema, max_tokens, temperature) -> dict:
        kwargs = {}
        if schema is not None:
            kwargs["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
                if self._schema_style == "json_schema" else {"type": "json_object", "schema": schema})
        return dict(model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature, **kwargs)


@contextmanager
def _counting_tries(retrying):
    """A transient failure that outlived its retries says how many times it was tried."""
    try:
        yield
    except TransientModelError as e:
        tries = retrying.statistics.get("attempt_number", 1)
        if tries > 1:
            raise TransientModelError(f"{e} (tried {tries} times)", backoff=e.backoff) from None
        raise


class _WaitRetryAfter(wait_base):
    """The server's Retry-After when it sent one, else the fallback's backoff; at most `cap` seconds."""

    def __init__(self, fallback: wait_base, cap: float):
        self.fallback, self.cap = fallback, cap

    def __call__(self, retry_state) -> float:
        after = getattr(retry_state.outcome.exception(), "retry_after", None)
        return min(self.cap, after if after is not None else self.fallback(retry_state))


def _retry_after(headers) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None without one."""
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _text_of(e) -> str:
    """The error's message from the body, without the client's 'Error code: ...' prefix."""
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        if msg:
            return str(msg)
    text = e.response.text if e.response is not None else ""
    if text.lstrip()[:200].lower().startswith(("<!doctype", "<html")):
        return "an HTML error page"
    return text or str(e.message)


_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _scrub(text: str) -> str:
    """A lower layer's or server's text with any URL in it redacted (a server may echo the request)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"
