"""The regression gate: verdicts of the pure function on hand-made score frames, and `python -m
core gate` on two runs stored in a real workspace, with the JUnit XML it writes read back."""
import json
import math
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from core import gate, stats
from core.cli import main
from core.errors import RagEvalError
from core.models import MODES, Answer, Question, Run, Score
from core.store import now
from tests.test_cli import core

NAN = math.nan


def frame(scores: dict[str, list[float]], mode: str = "rag", prefix: str = "Question") -> pd.DataFrame:
    """A tidy score frame: per metric, one score per question ("Question 0?", ...) in one mode."""
    rows = [{"question_id": f"q{i}", "question": f"{prefix} {i}?", "category": "", "mode": mode, "metric": metric,
             "value": v, "reason": "" if v == v else "the judge found no statements"}
            for metric, values in scores.items() for i, v in enumerate(values)]
    return pd.DataFrame(rows)


BASE = [0.9, 0.8, 0.85, 0.95, 0.7, 0.9]
NOISY_DROPS = [0.5, -0.2, 0.4, -0.05, -0.3, 0.3]  # mean 0.108, but an interval that spans zero


def test_a_small_drop_passes_and_its_figures_are_the_paired_statistics():
    cand = [0.88, 0.82, 0.8, 0.9, 0.7, 0.86]
    result = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": cand}))
    (c,) = result.checks
    assert result.passed and c.passed and c.measured and result.shared == 6
    direct = stats.compare(BASE, cand, "faithfulness")  # candidate − baseline: the drop is its negative
    assert c.drop == pytest.approx(-direct.mean_diff) == pytest.approx(sum(BASE) / 6 - sum(cand) / 6)
    assert (c.ci_low, c.ci_high) == pytest.approx((-direct.ci_high, -direct.ci_low))
    assert c.ci_low < c.drop < c.ci_high and (c.n_pairs, c.n_excluded) == (6, 0)
    assert c.line == (f"PASS faithfulness: drop {c.drop:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] within the "
                      "allowed 0.050; 6 of 6 shared questions scored in both runs")


def test_a_drop_over_the_allowance_fails_and_an_improvement_passes():
    worse = [v - 0.2 for v in BASE]
    result = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": worse}))
    (c,) = result.checks
    assert not result.passed and not c.passed and c.measured
    assert c.drop == pytest.approx(0.2) and "is more than the allowed 0.050" in c.reason
    loose = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": worse}), {"faithfulness": 0.25})
    assert loose.passed and "within the allowed 0.250" in loose.checks[0].reason
    better = gate.decide(frame({"faithfulness": worse}), frame({"faithfulness": BASE}), default_max_drop=0)
    assert better.passed and better.checks[0].drop == pytest.approx(-0.2)


def test_a_drop_equal_to_the_allowance_passes_despite_float_noise():
    result = gate.decide(frame({"faithfulness": [0.8] * 4}), frame({"faithfulness": [0.75] * 4}))
    assert 0.8 - 0.75 > 0.05 and result.passed  # 0.05000000000000004 is the allowance


def test_require_significant_fails_only_a_drop_whose_interval_excludes_zero():
    noisy = [b - d for b, d in zip(BASE, NOISY_DROPS)]
    plain = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": noisy}))
    strict = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": noisy}), require_significant=True)
    c = strict.checks[0]
    assert c.drop == pytest.approx(sum(NOISY_DROPS) / 6) and c.ci_low < 0 < c.ci_high
    assert not plain.passed and strict.passed
    assert c.reason.startswith(f"drop +0.108 [{c.ci_low:+.3f}, {c.ci_high:+.3f}] is more than the allowed 0.050, "
                               "but its interval includes no drop")
    steady = [b - d for b, d in zip(BASE, [0.2, 0.15, 0.1, 0.2, 0.12, 0.18])]
    sure = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": steady}), require_significant=True)
    assert not sure.passed and sure.checks[0].ci_low > 0


def test_runs_sharing_no_question_fail_every_check_with_the_reason():
    base = frame({"faithfulness": BASE, "answer_relevancy": BASE})
    other = frame({"faithfulness": BASE, "answer_relevancy": BASE}, prefix="Another question")
    result = gate.decide(base, other)
    assert result.shared == 0 and not result.passed
    assert [c.metric for c in result.checks] == ["faithfulness", "answer_relevancy"]
    for c in result.checks:
        assert not c.measured and c.drop is None
        assert c.line == (f"FAIL {c.metric}: not measured: the runs share no question (questions are matched by "
                          "their text)")


def test_questions_are_matched_by_text_and_unscored_ones_left_out():
    cand = frame({"faithfulness": [0.9, NAN, 0.85, 0.95, NAN, 0.9]})
    cand["question"] = cand["question"].str.upper()  # case and spacing are ignored when matching
    c = gate.decide(frame({"faithfulness": BASE}), cand).checks[0]
    assert (c.n_pairs, c.n_excluded) == (4, 2) and c.drop == pytest.approx(0)
    assert c.reason.endswith("4 of 6 shared questions scored in both runs")


def test_a_metric_missing_from_one_run():
    base = frame({"faithfulness": BASE, "answer_relevancy": BASE})
    cand = frame({"faithfulness": BASE})
    by_default = gate.decide(base, cand)  # every metric both runs have
    assert [c.metric for c in by_default.checks] == ["faithfulness"] and by_default.passed
    named = gate.decide(base, cand, {"answer_relevancy": None, "faithfulness": 0.1})
    relevancy, faithfulness = named.checks
    assert not named.passed and not relevancy.measured and relevancy.max_drop == gate.MAX_DROP
    assert relevancy.line == ("FAIL answer_relevancy: not measured: the candidate run has no answer_relevancy "
                              "scores (its metrics: faithfulness)")
    assert faithfulness.passed and faithfulness.max_drop == 0.1


def test_too_few_paired_scores_fail_with_the_count():
    cand = frame({"faithfulness": [0.9, NAN, NAN, NAN, NAN, NAN]})
    c = gate.decide(frame({"faithfulness": BASE}), cand).checks[0]
    assert not c.passed and not c.measured and c.n_pairs == 1
    assert c.reason == "not measured: only 1 of 6 shared questions scored in both runs; at least 2 needed"
    enough = gate.decide(frame({"faithfulness": BASE}), frame({"faithfulness": BASE}), min_pairs=7)
    assert "only 6 of 6 shared questions scored in both runs; at least 7 needed" in enough.checks[0].reason


def test_what_no_verdict_can_come_from_is_an_error():
    base = frame({"faithfulness": BASE})
    both_modes = pd.concat([base, frame({"faithfulness": BASE}, mode="llm_only")])
    with pytest.raises(RagEvalError, match=r"the candidate run has no LLM only answers \(its modes: rag\)"):
        gate.decide(both_modes, base, mode="llm_only")
    with pytest.raises(RagEvalError, match="the runs share no metric"):
        gate.decide(base, frame({"answer_relevancy": BASE}))
    with pytest.raises(RagEvalError, match="max drop -0.1 for faithfulness: use 0 or more"):
        gate.decide(base, base, {"faithfulness": -0.1})
    with pytest.raises(RagEvalError, match="metric 'recall' is unknown"):
        gate.decide(base, base, {"recall": 0.1})
    with pytest.raises(RagEvalError, match="min pairs 1"):
        gate.decide(base, base, min_pairs=1)


def test_junit_xml_has_one_testcase_per_metric_and_a_failure_per_failed_check():
    base = frame({"faithfulness": BASE, "answer_relevancy": BASE})
    cand = frame({"faithfulness": [v - 0.2 for v in BASE], "answer_relevancy": BASE})
    result = gate.decide(base, cand)
    root = ET.fromstring(gate.junit_xml(result, "gate: b vs a"))
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("gate: b vs a", "2", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["faithfulness", "answer_relevancy"]
    failure = cases["faithfulness"].find("failure")
    assert failure.get("message") == result.checks[0].reason and failure.get("type") == "drop"
    assert cases["answer_relevancy"].find("failure") is None
    assert cases["answer_relevancy"].find("system-out").text == result.checks[1].line


# -- the command, on two runs in a real workspace ------------------------------------------------
QUESTIONS = [f"How does feature {i} work?" for i in range(6)]


def stored_run(store, run_id: str, rag: dict[str, list], top_k: int = 4, modes=MODES, status: str = "done",
               judge: str = "endpoint:j") -> str:
    """A run of the six questions: LLM-only answers at 0.5, RAG answers scored `rag`."""
    if not any(s["name"] == "six" for s in store.question_sets()):
        store.save_question_set("six", [Question(f"q{i}", q) for i, q in enumerate(QUESTIONS)])
    store.create_run(Run(run_id, now(), "kb", "six", 1, modes, tuple(rag), "endpoint:m", judge,
                         top_k, "hybrid", status=status))
    store.add_answers([Answer(run_id, f"q{i}", mode, q, f"answer {i}") for i, q in enumerate(QUESTIONS)
                       for mode in modes])
    store.add_scores([Score(run_id, f"q{i}", mode, metric, 0.5 if mode == "llm_only" else values[i])
                      for metric, values in rag.items() for mode in modes for i in range(len(QUESTIONS))])
    return run_id


@pytest.fixture
def runs(store):
    """A baseline, and a candidate (top-k 8) whose RAG faithfulness dropped by about 0.2."""
    base = stored_run(store, "base", {"faithfulness": BASE, "answer_relevancy": BASE})
    cand = stored_run(store, "cand", {"faithfulness": [v - d for v, d in zip(BASE, [0.2, 0.15, 0.3, 0.2, 0.1, 0.25])],
                                      "answer_relevancy": [0.9, 0.82, 0.85, 0.93, 0.7, 0.9]}, top_k=8)
    return base, cand


def test_the_command_fails_the_drop_and_writes_junit(runs, tmp_path, capsys):
    xml = tmp_path / "gate.xml"
    assert main(["gate", "cand", "--baseline", "base", "--junit", str(xml)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("gate: run cand against baseline base, LLM + RAG answers, 6 shared questions; "
                      "what differs: top-k 4 → 8")
    assert out[1].startswith("FAIL faithfulness: drop +0.200 [") and "is more than the allowed 0.050" in out[1]
    assert out[2].startswith("PASS answer_relevancy: drop +0.000 [")
    assert out[3] == "gate failed: 1 of 2 checks" and len(out) == 4
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite.get("name") == "rag-eval gate: cand vs baseline base" and suite.get("failures") == "1"
    faithfulness, relevancy = suite.findall("testcase")
    assert faithfulness.find("failure").get("message") == out[1].removeprefix("FAIL faithfulness: ")
    assert relevancy.find("failure") is None and relevancy.find("system-out").text == out[2]

    # the same drop passes with a larger allowance for faithfulness; relevancy keeps the default
    assert main(["gate", "cand", "--baseline", "base", "--metric", "faithfulness", "--max-drop", "0.25",
                 "--metric", "answer_relevancy", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["passed"] and (got["candidate"], got["baseline"], got["shared_questions"]) == ("cand", "base", 6)
    assert [(c["metric"], c["max_drop"], c["passed"]) for c in got["checks"]] == [
        ("faithfulness", 0.25, True), ("answer_relevancy", 0.05, True)]
    assert got["checks"][0]["drop"] == pytest.approx(0.2)
    assert got["differences"] == [{"what": "top-k", "baseline": "4", "candidate": "8"}]


def test_the_command_gates_the_mode_asked_for_and_only_significant_drops(store, runs, capsys):
    assert main(["gate", "cand", "--baseline", "base", "--mode", "llm_only"]) == 0  # 0.5 in both runs
    assert "LLM only answers" in capsys.readouterr().out
    noisy = [b - d for b, d in zip(BASE, NOISY_DROPS)]
    stored_run(store, "noisy", {"faithfulness": noisy}, status="incomplete", judge="endpoint:other")
    assert main(["gate", "noisy", "--baseline", "base"]) == 1
    assert main(["gate", "noisy", "--baseline", "base", "--require-significant"]) == 0
    out, err = capsys.readouterr()
    assert "but its interval includes no drop" in out.splitlines()[-2]
    assert "warning: run noisy is incomplete: its questions not scored yet are left out" in err
    assert "warning: the runs were judged by different judges" in err


def test_usage_errors_exit_2_and_a_failed_gate_1(runs, tmp_path, capsys):
    unwritable = tmp_path / "no" / "such" / "gate.xml"
    for args, message in [
        (("--baseline", "nope"), "error: run 'nope' does not exist"),
        (("--baseline", "cand"), "error: run cand is its own baseline: name another run with --baseline"),
        (("--baseline", "base", "--junit", str(unwritable)), f"error: --junit {unwritable}: cannot write it"),
        (("--baseline", "base", "--max-drop", "-1"), "error: max drop -1.0 for every metric: use 0 or more"),
    ]:
        assert main(["gate", "cand", *args]) == 2, args
        assert capsys.readouterr().err.strip().startswith(message), args
    with pytest.raises(SystemExit) as exit_:
        main(["gate", "cand", "--baseline", "base", "--metric", "faithfulness", "--max-drop", "0.1",
              "--max-drop", "0.2"])
    assert exit_.value.code == 2 and "--max-drop is given twice for faithfulness" in capsys.readouterr().err


def test_the_exit_code_of_a_separate_process(runs, settings):
    p = core(settings.home, "gate", "cand", "--baseline", "base")
    assert p.returncode == 1 and p.stdout.splitlines()[-1] == "gate failed: 1 of 2 checks", p.stderr
    assert "Traceback" not in p.stderr


def test_the_latest_verdicts_are_kept_with_the_candidate_and_carried_by_show_and_the_report(runs, store, capsys,
                                                                                          tmp_path):
    from core.report import html_report
    from core.results import document, load

    assert main(["gate", "cand", "--baseline", "base"]) == 1
    assert main(["gate", "cand", "--baseline", "base", "--max-drop", "0.5"]) == 0  # replaces the verdicts above
    assert main(["gate", "cand", "--baseline", "base", "--mode", "llm_only"]) == 0
    capsys.readouterr()
    (llm_only, rag) = sorted(store.gates("cand"), key=lambda g: g["mode"])
    assert (rag["baseline"], rag["passed"], [c["max_drop"] for c in rag["checks"]]) == ("base", True, [0.5, 0.5])
    assert llm_only["mode"] == "llm_only" and llm_only["differences"] == [
        {"what": "top-k", "baseline": "4", "candidate": "8"}]
    assert store.gates("base") == []  # a verdict belongs to its candidate
    assert main(["show", "cand", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {(g["mode"], g["passed"]) for g in shown["gates"]} == {("rag", True), ("llm_only", True)}
    res = load(store, "cand")
    assert document(store, res)["gates"] == shown["gates"]  # the JSON export is the same document
    html = html_report(store, res)
    assert "Regression gate" in html and "Against baseline run base (LLM + RAG answers, 6 shared questions" in html
    store.delete_run("base")
    assert store.gates("cand") == []  # verdicts against a deleted baseline go with it
