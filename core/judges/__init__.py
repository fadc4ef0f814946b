"""How a score is decided. Faithfulness has two judges behind RAGAS's metric interface:

    likelihood  core/judges/likelihood.py: verdicts from evidence log-probabilities of a local
                (embedded GGUF) model; the default for an embedded judge
    ragas       RAGAS's own LLM prompts (statements, then verdicts); the default for an
                endpoint judge, where a capable model writes the verdicts
"""
from __future__ import annotations

from core.config import ModelConfig
from core.errors import ConfigError

FAITHFULNESS_JUDGES = ("likelihood", "ragas")
FAITHFULNESS_JUDGE_WORDS = {"likelihood": "the likelihood judge (evidence log-probabilities)",
                            "ragas": "RAGAS's LLM prompts"}


def faithfulness_judge(setting: str, cfg: ModelConfig) -> str:
    """The faithfulness judge a run uses: `setting` ('auto', 'likelihood' or 'ragas') for this judge model."""
    if setting == "auto":
        return "likelihood" if cfg.backend == "embedded" else "ragas"
    if setting not in FAITHFULNESS_JUDGES:
        raise ConfigError(f"setting RAGEVAL_FAITHFULNESS_JUDGE={setting!r}: use auto, likelihood or ragas")
    if setting == "likelihood" and cfg.backend != "embedded":
        raise ConfigError("setting RAGEVAL_FAITHFULNESS_JUDGE=likelihood needs an embedded (GGUF) judge model: it reads "
                          "token log-probabilities in process; use 'ragas' (or 'auto') with an endpoint judge")
    return setting
