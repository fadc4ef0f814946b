"""Why llama.cpp evaluates the judge's prompts slowly: prefill and generation tokens/s per setting.

    python bench/llama_prefill.py [--tokens 1600] [--rounds 3] [--only NAME,...]

Times prompt evaluation (`Llama.eval` of --tokens tokens of real text, from an empty KV
cache) and greedy generation (32 tokens) for the embedded SmolLM2-135M-Instruct under
several settings: n_batch / n_ubatch, n_threads 1 vs 2, logits_all, flash attention, and
the weights' format (the shipped Q4_1 and Q4_0 / Q8_0 / F16 / BF16 copies requantized from
it with llama.cpp's own `llama_model_quantize`, written once under bench/results/). The
variants are interleaved round by round in one process, so the shared machine's load
falls on all of them alike; the table gives the median of the rounds and the ratio to the
baseline, which is how core/llm/embedded.py builds its model.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
# core/llm/embedded.py passes n_threads only; llama-cpp-python then evaluates prompts with
# n_threads_batch = cpu_count() threads, so "threads" here sets both
BASE = {"fmt": "Q4_1", "threads": 2, "flash_attn": False}


def _grid() -> dict[str, dict]:
    """Every weights format x 2 or 1 threads x flash attention off / on, then the batch
    sizes and logits_all on the baseline."""
    grid = {}
    for fmt in ("Q4_1", "Q4_0", "Q8_0", "F16", "BF16"):
        for threads in (2, 1):
            for flash in (False, True):
                name = f"{fmt} {threads} thread{'s' if threads > 1 else ''}{' flash_attn' if flash else ''}"
                grid[name] = {"fmt": fmt, "threads": threads, "flash_attn": flash}
    for n in (8, 64, 2048):
        grid[f"Q4_1 2 threads n_batch=n_ubatch={n}"] = {"n_batch": n, "n_ubatch": n}
    grid["Q4_1 2 threads logits_all"] = {"logits_all": True}
    return grid


VARIANTS = _grid()
GENERATED = 32


def model_file(fmt: str) -> str:
    """The shipped GGUF, or a copy requantized from it (allow_requantize), made once."""
    import llama_cpp

    from core.llm.embedded import default_gguf

    shipped = default_gguf()
    if fmt == "Q4_1":
        return shipped
    out = RESULTS / f"{Path(shipped).stem.rsplit('.', 1)[0]}.{fmt}-from-Q4_1.gguf"
    if not out.is_file():
        RESULTS.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{fmt}")
        params.allow_requantize = True
        tmp = out.with_suffix(".tmp")
        if llama_cpp.llama_model_quantize(shipped.encode(), str(tmp).encode(), params) != 0:
            raise SystemExit(f"llama_model_quantize to {fmt} failed")
        tmp.rename(out)
    return str(out)


def text_tokens(llama, n: int) -> list[int]:
    """n tokens of real prose and code (the seed evaluation's answers), not a repeated string."""
    text = (ROOT / "data" / "seed_evaluation.md").read_text(encoding="utf-8")
    tokens = llama.tokenize(text.encode(), add_bos=True)
    if len(tokens) < n:
        raise SystemExit(f"data/seed_evaluation.md has only {len(tokens)} tokens; use --tokens {len(tokens)}")
    return tokens[:n]


def measure(setting: dict, n_tokens: int) -> dict[str, float]:
    """Prefill and generation of a fresh context with these settings, as tokens per wall second
    and per CPU second of this process (all its threads): on a shared machine the wall figure
    moves with the neighbours' load, the CPU figure says what the kernels cost."""
    from llama_cpp import Llama

    options = {k: v for k, v in setting.items() if k not in ("fmt", "threads")}
    llama = Llama(model_path=model_file(setting["fmt"]), n_ctx=max(2048, n_tokens + 64), verbose=False,
                  n_threads=setting["threads"], n_threads_batch=setting["threads"], **options)
    try:
        tokens = text_tokens(llama, n_tokens)
        w0, c0 = time.perf_counter(), time.process_time()
        llama.eval(tokens)
        out = {"prefill": n_tokens / (time.perf_counter() - w0), "prefill_cpu": n_tokens / (time.process_time() - c0)}
        llama.reset()
        prompt = llama.tokenize(b"<|im_start|>user\nExplain what a hash table is.<|im_end|>\n<|im_start|>assistant\n",
                                add_bos=True, special=True)
        llama.eval(prompt)
        w0, c0, made = time.perf_counter(), time.process_time(), 0
        for _ in llama.generate(prompt, temp=0.0, reset=False):
            made += 1
            if made == GENERATED:
                break
        out.update(generate=made / (time.perf_counter() - w0), generate_cpu=made / (time.process_time() - c0))
    finally:
        llama.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1600)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="", help="comma-separated variant names (the baseline is always run)")
    args = p.parse_args()
    names = list(VARIANTS)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        names = [names[0]] + [n for n in names[1:] if n in wanted]
    for name in names:  # requantize before timing anything
        model_file({**BASE, **VARIANTS[name]}["fmt"])
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names:
            runs[name].append(measure({**BASE, **VARIANTS[name]}, args.tokens))
            print(f"  round {r + 1} {name:<28} " + "  ".join(f"{k} {v:6.0f}" for k, v in runs[name][-1].items()),
                  file=sys.stderr, flush=True)
    median = {n: {k: statistics.median(m[k] for m in runs[n]) for k in runs[n][0]} for n in names}
    base = median[names[0]]
    print(f"prefill of {args.tokens} tokens (Llama.eval) and {GENERATED} generated tokens, median of {args.rounds} "
          f"interleaved rounds; x = ratio to the first row, the baseline: how core/llm/embedded.py builds its model (Q4_1, 2 threads, n_batch 512, no flash attention); "
          f"/cpu-s = tokens per CPU second of all threads")
    print(f"  {'variant':<28} {'prefill tok/s':>13} {'x':>5} {'tok/cpu-s':>9} {'x':>5}"
          f" {'generate tok/s':>14} {'x':>5} {'tok/cpu-s':>9} {'x':>5}")
    for name in names:
        m = median[name]
        print(f"  {name:<28} " + " ".join(f"{m[k]:{w}.0f} {m[k] / base[k]:5.2f}" for k, w in
                                            (("prefill", 13), ("prefill_cpu", 9), ("generate", 14), ("generate_cpu", 9))))

if __name__ == "__main__":
    main()
