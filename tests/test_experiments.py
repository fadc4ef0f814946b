"""Experiments: the leaderboard's arithmetic on hand-made frames, and the grid executed as real runs
(real LanceDB, the real encoder) with a scripted model; test_experiments_e2e.py runs the embedded models."""
import math
import os
import time

import pytest

from core import charts, experiments, stats
from core.errors import RagEvalError
from core.experiments import board, create_experiment, execute, leaderboard
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import Question
from tests.test_gate import frame
from tests.test_runs import judge_reply

BASE = [0.9, 0.8, 0.85, 0.95, 0.7, 0.9]


def test_the_leaderboard_pairs_each_configuration_with_the_baseline_and_holm_adjusts_across_them():
    worse = [v - d for v, d in zip(BASE, [0.2, 0.15, 0.3, 0.2, 0.1, 0.25])]
    noisy = [v - d for v, d in zip(BASE, [0.5, -0.2, 0.4, -0.05, -0.3, 0.3])]
    better = [min(1.0, v + d) for v, d in zip(BASE, [0.05, 0.1, 0.1, 0.04, 0.2, 0.06])]
    frames = [frame({"faithfulness": BASE}), frame({"faithfulness": worse}), None,
              frame({"faithfulness": noisy}), frame({"faithfulness": better})]
    rows = board(frames, ["faithfulness"], baseline=0).set_index("config")
    assert list(rows.index) == [1, 2, 3, 4, 5] and rows.at[1, "baseline"] and not rows.at[2, "baseline"]
    assert rows.at[2, "mean"] == pytest.approx(sum(worse) / 6) and rows.at[2, "n_scored"] == 6
    assert rows.at[2, "mean_diff"] == pytest.approx((sum(worse) - sum(BASE)) / 6)
    assert math.isnan(rows.at[1, "mean_diff"]) and math.isnan(rows.at[1, "p_holm"])  # the baseline itself
    assert math.isnan(rows.at[3, "mean"]) and rows.at[3, "n_scored"] == 0 and math.isnan(rows.at[3, "p_value"])
    # the raw p-values are each configuration's own paired test ...
    raw = {c: stats.compare(BASE, f[f.metric == "faithfulness"]["value"].tolist(), "faithfulness").p_value
           for c, f in ((2, frames[1]), (4, frames[3]), (5, frames[4]))}
    assert {c: rows.at[c, "p_value"] for c in raw} == pytest.approx(raw)
    # ... and Holm's step-down over the three compared configurations, by hand
    (c1, p1), (c2, p2), (c3, p3) = sorted(raw.items(), key=lambda kv: kv[1])
    by_hand = {c1: min(1, 3 * p1), c2: min(1, max(3 * p1, 2 * p2)), c3: min(1, max(3 * p1, 2 * p2, p3))}
    assert {c: rows.at[c, "p_holm"] for c in raw} == pytest.approx(by_hand)
    assert rows.at[c1, "p_holm"] > rows.at[c1, "p_value"]
    # the regression gate at its default allowance (0.05): the drops of 0.2 and 0.11 fail, the gain passes
    assert rows["gate"].tolist()[1:] == ["fail", None, "fail", "pass"] and rows.at[1, "gate"] is None
    # another baseline: every difference is now against configuration 5
    again = board(frames, ["faithfulness"], baseline=4).set_index("config")
    assert again.at[1, "mean_diff"] == pytest.approx(-rows.at[5, "mean_diff"]) and math.isnan(again.at[5, "mean_diff"])


def test_holm_by_hand_on_made_up_p_values():
    assert stats.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert stats.holm([0.2, None, 0.001, 0.6]) == pytest.approx([0.4, None, 0.003, 0.6])


QUESTIONS = [Question("q1", "How long does the Flask-Login remember me cookie last?"),
             Question("q2", "How do I connect to an SQLite database?")]


@pytest.fixture
def kb(settings, store, embedder, docs):
    ingest([str(docs)], "kb", store, embedder, settings)
    store.save_question_set("two", QUESTIONS)
    return "kb"


def test_a_grid_is_refused_when_too_large_or_its_values_are_not_allowed(settings, store, kb):
    with pytest.raises(RagEvalError, match=r"makes 16 configurations \(4 top-k × 4 chunk size\), more than 12"):
        create_experiment(store, settings, "big", kb, "two", top_k=[1, 2, 3, 4], chunk_tokens=[None, 64, 96, 128])
    assert len(create_experiment(store, settings, "big", kb, "two", top_k=[1, 2, 3, 4],
                                 chunk_tokens=[None, 64, 96, 128], max_configs=16).configs) == 16
    for axes, message in [({"top_k": [2, 2]}, "top-k top-2 is given twice"),
                          ({"top_k": [0]}, "top-k 0"),
                          ({"chunk_tokens": [500]}, "chunk size 500: use 32 to 240 tokens"),
                          ({"search_mode": ["fuzzy"]}, "search mode 'fuzzy' is not allowed"),
                          ({"embedding_model": ["/no/such/model"]}, "encoder /no/such/model: no such folder")]:
        with pytest.raises(RagEvalError, match=message):
            create_experiment(store, settings, "bad", kb, "two", **axes)
    with pytest.raises(RagEvalError, match="knowledge base 'nowhere' does not exist"):
        create_experiment(store, settings, "bad", "nowhere", "two")
    assert [e.name for e in store.experiments()] == ["big"]  # nothing of the refused ones was stored


def test_the_grid_runs_as_tagged_runs_and_a_derived_knowledge_base_is_built_once(settings, store, embedder, kb):
    exp = create_experiment(store, settings, "chunks", kb, "two", metrics=("faithfulness",), top_k=[2, 1],
                            chunk_tokens=[None, 64])
    assert [c["settings"]["top_k"] for c in exp.configs] == [2, 2, 1, 1]
    derived = "kb.chunk-64-13"  # 40 overlap at 200 tokens, in proportion
    assert [c["kb"] for c in exp.configs] == [kb, derived, kb, derived]
    answers = FakeLLM(lambda m, s: "Flask-Login remembers users with a cookie.")
    done = execute(store, settings, exp.id, answer_llm=answers, judge_llm=FakeLLM(judge_reply))
    assert done.status == "done" and answers.calls == 4 * 2
    runs = [store.run(c["run_id"]) for c in done.configs]
    assert [(r.kb, r.top_k, r.modes, r.status) for r in runs] == [
        (kb, 2, ("rag",), "done"), (derived, 2, ("rag",), "done"), (kb, 1, ("rag",), "done"),
        (derived, 1, ("rag",), "done")]
    assert all(r.config["experiment"] == exp.id for r in runs)
    assert [c.get("kb_ready", {}).get("how") for c in done.configs] == [None, "built", None, "reused"]
    assert store.kb_table(derived).count_rows() > store.kb_table(kb).count_rows()  # smaller chunks, more of them
    assert {s["source"] for s in store.kb_sources(derived)} == {s["source"] for s in store.kb_sources(kb)}
    # a later experiment asking for the same chunking reuses the knowledge base as it is
    version = store.kb_table(derived).version
    again = create_experiment(store, settings, "again", kb, "two", metrics=("faithfulness",), chunk_tokens=[64])
    execute(store, settings, again.id, answer_llm=answers, judge_llm=FakeLLM(judge_reply))
    assert store.kb_table(derived).version == version and store.experiment(again.id).configs[0]["kb_ready"]["how"] \
        == "reused"
    assert store.run(store.experiment(again.id).configs[0]["run_id"]).kb == derived

    board_ = leaderboard(store, exp.id)
    rows = board_.rows
    assert list(rows["label"]) == ["top-2 · the base's chunks", "top-2 · 64-token chunks",
                                   "top-1 · the base's chunks", "top-1 · 64-token chunks"]
    assert list(rows["status"]) == ["done"] * 4 and rows["n_scored"].tolist() == [2] * 4
    assert rows["n_pairs"].iloc[1:].tolist() == [2, 2, 2]
    doc = board_.to_json()
    assert doc["baseline"] == 1 and [c["run_id"] for c in doc["configs"]] == [r.id for r in runs]
    assert doc["leaderboard"][0]["mean_diff"] is None  # the baseline's own row: null, not NaN
    fig = charts.experiment_differences(rows, "top-2 · the base's chunks")
    assert len(fig.data) == 1 and len(fig.data[0].x) == 3  # one metric, three configurations against the baseline
    lines = board_.lines()
    assert "baseline #1 top-2 · the base's chunks" in lines[0] and any("baseline  [done]" in ln for ln in lines)
    assert lines[1].startswith(f"knowledge base {derived} (configurations 2, 4): built from the sources of kb in ")


def test_cancel_stops_the_experiment_and_resume_skips_the_finished_runs(settings, store, embedder, kb):
    exp = create_experiment(store, settings, "topk", kb, "two", metrics=("faithfulness",), top_k=[1, 2, 3])
    calls = []

    def answer_then_cancel(messages, schema):
        calls.append(1)
        if len(calls) == 3:  # the first answer of the second configuration
            experiments.cancel(store, exp.id)
            time.sleep(0.3)  # a worker may read its cancel flag from the store only every few tenths of a second
        return "A cookie."

    out = execute(store, settings, exp.id, answer_llm=FakeLLM(answer_then_cancel), judge_llm=FakeLLM(judge_reply))
    assert out.status == "cancelled"
    first, second, third = out.configs
    assert store.run(first["run_id"]).status == "done" and store.run(second["run_id"]).status == "cancelled"
    assert third["run_id"] == "" and experiments.status(store, out) == "cancelled"

    answers = FakeLLM(lambda m, s: "A cookie.")
    out = execute(store, settings, exp.id, answer_llm=answers, judge_llm=FakeLLM(judge_reply))
    assert out.status == "done" and out.configs[0]["run_id"] == first["run_id"]
    assert answers.calls == 1 + 2  # the second run's missing answer, then the third run's two; never the first's
    assert len(store.answers(first["run_id"])) == 2

    kept = store.experiment(exp.id).configs
    assert experiments.delete(store, exp.id) == []  # the runs stay, as ordinary runs
    assert store.experiments() == [] and store.run(kept[0]["run_id"]).status == "done"
    again = create_experiment(store, settings, "again", kb, "two", metrics=("faithfulness",), top_k=[1])
    execute(store, settings, again.id, answer_llm=answers, judge_llm=FakeLLM(judge_reply))
    (run_id,) = [c["run_id"] for c in store.experiment(again.id).configs]
    assert experiments.delete(store, again.id, with_runs=True) == [run_id]
    assert run_id not in {r.id for r in store.runs()} and len(store.runs()) == 3


def test_the_command_line_reads_each_axis_and_refuses_a_grid_too_large(settings, store, kb, capsys, tmp_path):
    from core.cli import _answer_models, main, parser

    args = parser().parse_args(["experiment", "run", "--name", "x", "--kb", kb, "--top-k", "4,2",
                                "--search-mode", "hybrid,fts", "--chunk-size", "base,64", "--encoder", "base,enc",
                                "--answer-model", "base,other.gguf"])
    assert (args.top_k, args.search_mode, args.chunk_size) == ([4, 2], ["hybrid", "fts"], [None, 64])
    assert args.encoder == [None, os.path.abspath("enc")]  # a model folder, named from where the command runs
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    base, other = _answer_models(settings, ["base", str(gguf)])
    assert base == settings.answer_model and (other.backend, other.model) == ("embedded", str(gguf))
    code = main(["experiment", "run", "--name", "x", "--kb", kb, "--questions", "two", "--top-k", "1,2,3,4",
                 "--chunk-size", "base,64,96,128"])
    assert code == 2 and "makes 16 configurations" in capsys.readouterr().err
    assert main(["experiment", "show", "exp-nope"]) == 2
    assert "experiment 'exp-nope' does not exist" in capsys.readouterr().err
    assert main(["experiment", "list", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
