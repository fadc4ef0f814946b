"""The records, defined once and used everywhere."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MODES = ("llm_only", "rag")
MODE_LABELS = {"llm_only": "LLM only", "rag": "LLM + RAG"}
METRICS = ("faithfulness", "answer_relevancy", "context_relevance", "context_recall", "context_precision",
           "answer_correctness")
DEFAULT_METRICS = ("faithfulness", "answer_relevancy")  # what a run scores unless told otherwise
# properties of the retrieved passages, which both modes share: scored once per question, on the RAG item
RETRIEVAL_METRICS = ("context_relevance", "context_recall", "context_precision")
REFERENCE_METRICS = ("context_recall", "context_precision", "answer_correctness")  # need the question's reference
METRIC_LABELS = {"faithfulness": "Faithfulness", "answer_relevancy": "Answer relevancy",
                 "context_relevance": "Context relevance", "context_recall": "Context recall",
                 "context_precision": "Context precision", "answer_correctness": "Answer correctness"}
REVIEW_VERDICTS = ("right", "wrong")  # a person's verdict on a judge's score (Review)


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, e.g. ("Guide", "Install")."""

    path: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Document:
    """One readable unit of a source (a file, an archive member), already cleaned."""

    source: str  # what the user named: a file, folder or archive path
    name: str  # the document within the source, e.g. a relative path
    sections: tuple[Section, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True)
class Skipped:
    """A file of a source that could not be read, with the reason."""

    source: str
    name: str
    reason: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized for the embedding model, ready to be stored."""

    source: str
    document: str
    section: str  # heading path joined with " > "
    chunk_index: int
    text: str
    content_hash: str  # of the whole document: unchanged documents are not re-embedded

    @property
    def id(self) -> str:
        return f"{self.source}::{self.document}::{self.chunk_index}"


@dataclass(frozen=True)
class Passage:
    """A chunk returned by a search, with its score (higher is better)."""

    id: str
    text: str
    source: str
    document: str
    section: str
    score: float | None  # None for a passage given with an imported answer: it was never searched


@dataclass(frozen=True)
class VectorIndex:
    """A knowledge base's vector index with the search parameters its own recall check chose."""

    kind: str  # a LanceDB index type, e.g. "IVF_HNSW_SQ"
    partitions: int
    rows: int  # rows when the index was built; a table that doubles since is re-indexed
    checked_rows: int  # rows when recall was last measured
    nprobes: int
    ef: int | None  # HNSW candidates per partition
    refine_factor: int | None  # re-rank this many times k with the full vectors
    recall: float  # recall@k against exact search on a sample of the table's own vectors
    sample: int  # queries in that sample
    k: int
    target: float
    built_at: str
    build_seconds: float

    @property
    def meets_target(self) -> bool:
        return self.recall >= self.target

    def describe(self) -> str:
        params = ", ".join(f"{n} {v}" for n, v in (("nprobes", self.nprobes), ("ef", self.ef),
                                                    ("refine", self.refine_factor)) if v)
        verdict = "meets" if self.meets_target else "is BELOW"
        return (f"{self.kind} index ({self.partitions} partitions, {params}): recall@{self.k} "
                f"{self.recall:.3f} on {self.sample} sampled rows {verdict} the {self.target:.2f} target")


@dataclass(frozen=True)
class Question:
    """One question of a set, with its optional reference answer and category."""

    id: str
    question: str
    reference: str = ""
    category: str = ""


@dataclass(frozen=True)
class QuestionSet:
    """A named, versioned list of questions."""

    name: str
    version: int
    questions: tuple[Question, ...]
    created_at: str = ""
    origin: str = ""  # the file it came from


@dataclass(frozen=True)
class Completion:
    """What one model call returned, and what it cost."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True)
class TokenLogprobs:
    """A text's tokens as a model reads them after a prompt: where each starts in the text
    (characters) and its log-probability given the prompt and the tokens before it."""

    tokens: tuple[str, ...]
    offsets: tuple[int, ...]
    logprobs: tuple[float, ...]
    top_logprobs: tuple[float, ...] = ()  # log p of the model's own likeliest token at each position
    prompt_tokens: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    """One mode's answer to one question of a run."""

    run_id: str
    question_id: str
    mode: str
    question: str
    text: str
    passages: tuple[Passage, ...] = ()  # the passages shown to the model (rag mode only)
    model: str = ""
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""  # why there is no answer, when there is none
    retryable: bool = False  # the failure may pass (endpoint down, timeout, 429, 5xx): resume answers again

    def __post_init__(self):
        if self.retryable and not self.error:
            raise ValueError("only a failed answer can be retryable")


@dataclass(frozen=True)
class Score:
    """One metric's score of one answer; `value` is None when unscored, and `reason` says why."""

    run_id: str
    question_id: str
    mode: str
    metric: str
    value: float | None
    reason: str = ""
    details: dict = field(default_factory=dict)  # RAGAS's intermediate outputs, for drill-down
    judge: str = ""
    latency_s: float = 0.0
    retryable: bool = False  # unscored for a reason that may pass (judge endpoint down): resume scores again

    def __post_init__(self):
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            if not self.reason:
                raise ValueError("an unscored Score needs a reason")
            object.__setattr__(self, "value", None)
        elif not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score {self.value} is outside [0, 1]")
        elif self.retryable:
            raise ValueError("only an unscored Score can be retryable")

    @property
    def scored(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Run:
    """One evaluation: a question set version × knowledge base × models × settings."""

    id: str
    created_at: str
    kb: str
    question_set: str
    question_set_version: int
    modes: tuple[str, ...]
    metrics: tuple[str, ...]
    answer_model: str  # a label, e.g. "embedded:SmolLM2-135M-Instruct.Q4_1.gguf"
    judge_model: str
    top_k: int
    search_mode: str
    limit: int | None = None
    status: str = "pending"  # pending, running, done, incomplete (retryable failures left), cancelled, failed
    imported: bool = False
    error: str = ""
    config: dict = field(default_factory=dict)  # model configs and settings: enough to resume


@dataclass(frozen=True)
class Job:
    """One long task (a run's execution, a re-judging, ...) and who works on it (core/jobs.py)."""

    key: str  # "<kind>:<target>": one current job per task and target
    kind: str  # run, rejudge
    target: str  # what it works on, e.g. a run id
    command: tuple[str, ...]  # the `python -m core` arguments that do the work
    status: str = "pending"  # pending, running, done, incomplete, cancelled, failed
    token: str = ""  # issued when the job was submitted or started: who holds it
    worker: str = ""  # "host:pid" of the process working on it
    heartbeat: float = 0.0  # unix time the worker (or the submitter) was last heard from
    cancel_requested: bool = False
    created_at: str = ""
    ended_at: str = ""
    log: str = ""  # the worker's output, for a launched job
    error: str = ""
    done: int = 0  # progress the worker last reported
    total: int = 0


@dataclass(frozen=True)
class JudgeCheck:
    """A judge's scores on the calibration set, stored under the judge's identity."""

    judge_key: str  # hash of `identity`: a check is reused until any part of it changes
    identity: dict  # backend, model, file/quantisation, prompt version, temperature, strictness, set
    label: str  # the judge's label, as runs record it
    created_at: str
    items: int  # calibration items scored (a --limit makes this fewer than the set holds)
    seconds: float  # wall-clock time of the whole check
    scores: tuple[dict, ...]  # {"item", "answer", "metric", "value", "reason"}; value None = unscored


@dataclass(frozen=True)
class Review:
    """One person's review of one score: marked right or wrong, or given their own score, with a note."""

    run_id: str
    question_id: str
    mode: str
    metric: str
    reviewer: str
    verdict: str = ""  # "right" or "wrong"; "" when the person gave their own score instead
    score: float | None = None  # the person's own score in [0, 1]
    judge_value: float | None = None  # the judge's score the person saw: a verdict is about that value
    note: str = ""
    created_at: str = ""

    def __post_init__(self):
        if (self.verdict == "") == (self.score is None):
            raise ValueError("a review is either a verdict (right / wrong) or the person's own score")
        if self.verdict and self.verdict not in REVIEW_VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(REVIEW_VERDICTS)}")
        if self.verdict and self.judge_value is None:
            raise ValueError("only a score the judge gave can be marked right or wrong")
        if self.score is not None and not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score {self.score} is outside [0, 1]")



@dataclass(frozen=True)
class Experiment:
    """One question set run over a grid of settings: one ordinary run per configuration, the first the baseline."""

    id: str
    name: str
    created_at: str
    kb: str  # the base knowledge base; a different chunk size or encoder is built from its sources
    question_set: str
    question_set_version: int
    modes: tuple[str, ...]
    metrics: tuple[str, ...]
    grid: dict  # axis -> its values, in order (core.experiments.AXES)
    # per configuration: {"settings": {axis: value}, "kb": the knowledge base it reads, "run_id": "" until made}
    configs: tuple[dict, ...]
    limit: int | None = None
    status: str = "pending"  # pending, running, done, incomplete, cancelled, failed
    error: str = ""
