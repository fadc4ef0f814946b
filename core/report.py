"""The stakeholder report (one self-contained HTML file) and the per-item data exports.

The HTML holds Plotly's JavaScript inline, so it opens offline in any browser; every piece
of user text (questions, answers, names) is escaped, never inserted as markup.
"""
from __future__ import annotations

import html
import io

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from core import charts, stats, why
from core.export import csv_bytes
from core.models import METRIC_LABELS, MODE_LABELS
from core.results import RawJSON, RunResults, document, items_frame
from core.results import items as read_items
from core.reviews import sentences
from core.store import Store

EXAMPLES = 3  # best and worst questions shown side by side
FORMATS = ("html", "csv", "parquet", "json")
TRUST_WORDS = {True: "trustworthy for this judge", False: "not trustworthy for this judge",
               None: "not known to be trustworthy (this judge was never checked)"}

METHOD = {
    "faithfulness": "the share of the answer's statements that the retrieved passages support. The judge splits "
                    "the answer into statements and gives each a supported / not supported verdict. Both modes are "
                    "judged against the same passages, those retrieved for the question, so the comparison is like "
                    "for like.",
    "answer_relevancy": "how directly the answer addresses the question. The judge writes questions the answer "
                        "would fit; their similarity to the real question is the score, and an evasive answer "
                        "scores 0.",
    "context_relevance": "whether the retrieved passages bear on the question: two judge prompts each rate them 0, 1 "
                         "or 2, averaged and scaled to 0-1. A property of the retrieval, so scored once per question "
                         "(on the LLM + RAG item).",
    "context_recall": "the share of the reference answer's statements that the retrieved passages support. Scored "
                      "once per question, and only where the question has a reference answer.",
    "context_precision": "whether the passages useful for the reference answer are ranked first (average precision of "
                         "the judge's useful / not useful verdict per passage). Scored once per question, and only "
                         "where the question has a reference answer.",
    "answer_correctness": "how far the answer agrees with the reference answer: the F1 of their statements (75%) and "
                          "their embeddings' similarity (25%). Both modes, only where the question has a reference.",
}


def export_bytes(store: Store, res: RunResults, fmt: str) -> bytes:
    """The run's per-item results as CSV or Parquet (one row per question and mode), or the
    run's JSON document, the same `show --json` prints."""
    if fmt == "json":
        raw = RawJSON()
        return raw.dumps(document(store, res, raw))
    df = items_frame(store, res)
    if fmt == "csv":
        return csv_bytes(df)
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS[1:])}")


def html_report(store: Store, res: RunResults) -> str:
    """The report as one HTML document."""
    df, findings, both = res.frame, res.findings, res.both_modes
    run = res.run_json()
    metrics = list(run["metrics"])
    figures: list[go.Figure] = []
    if both:
        figures.append(charts.differences({m: stats.Comparison(**f["comparison"]) for m, f in findings.items()}))
    figures.append(charts.mean_bars(df))
    if both:
        figures += [charts.deltas(df, m) for m in metrics]
        if df["category"].ne("").any():
            figures.append(charts.category_differences(stats.by_category(df, metrics, cache=store.intervals)))
    figures += [charts.distributions(df), charts.scatter(df)]
    if both:
        figures.append(charts.why_bar(why.summary(res.why)["counts"]))
    parts = [_setup(run), _headline(findings, both), _why(res) if both else "", _trust(res.trust, metrics),
             _people(res.human_review), _gates(store.gates(res.run.id)), "<h2>Charts</h2>"]
    parts += [f'<div class="chart">{f.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)}</div>'
              for f in figures]
    if both:
        parts.append(_examples(store, res, metrics))
    parts.append(_method(run, metrics))
    title = f"RAG evaluation · {run['question_set']} on {run['kb']}"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{_CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body><main><h1>{_e(title)}</h1>{''.join(parts)}"
            f"</main></body></html>\n")


_CONFIG = {"displaylogo": False, "responsive": True}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#0f172a;background:#f8fafc;margin:0}
main{max-width:1100px;margin:auto;padding:24px}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #e2e8f0;padding-bottom:.3rem}
table.setup td{padding:2px 12px 2px 0;vertical-align:top}table.setup td:first-child{color:#64748b}
.finding{font-size:1.05rem;margin:.4rem 0}.note{color:#475569}.warn{color:#b45309}
.chart{background:white;border:1px solid #e2e8f0;border-radius:8px;margin:12px 0;padding:4px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin-bottom:8px}
.answer{background:white;border:1px solid #e2e8f0;border-radius:8px;padding:10px;white-space:pre-wrap;
max-height:22rem;overflow:auto}
.example{margin:18px 0}.q{font-weight:600;white-space:pre-wrap}
"""


def _e(value) -> str:
    return html.escape(str(value if value is not None else ""))


def _setup(run: dict) -> str:
    rows = [("Question set", f"{run['question_set']} (version {run['question_set_version']})"),
            ("Knowledge base", run["kb"]),
            ("Retrieval", f"top {run['top_k']} passages, {run['search_mode']} search"),
            ("Answer model", run["answer_model"]), ("Judge model", run["judge_model"]),
            ("Modes", ", ".join(MODE_LABELS.get(m, m) for m in run["modes"])),
            ("Run", f"{run['id']} · {run['status']}" + (" · imported answers" if run.get("imported") else "")),
            ("Date", run["created_at"])]
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<h2>Setup</h2><table class=\"setup\">{body}</table>"


def _headline(findings: dict, both: bool) -> str:
    if not both:
        return "<h2>Findings</h2><p class=\"note\">This run has one mode only, so there is no comparison.</p>"
    out = ["<h2>Findings</h2>"]
    for f in findings.values():
        out.append(f'<p class="finding">{_e(f["sentence"])}</p>')
        if f.get("noise_sentence"):
            out.append(f'<p class="note">{_e(f["noise_sentence"])}</p>')
    return "".join(out)


def _why(res: RunResults) -> str:
    """Why RAG changed the questions' scores (core.why): the count of each class beside its rule."""
    summary = why.summary(res.why)
    rows = "".join(f"<tr><td>{_e(why.CLASSES[k])}</td><td>{n:,}</td><td>{_e(why.RULES[k])}</td></tr>"
                   for k, n in summary["counts"].items())
    return (f'<h2>Why RAG changed the scores</h2><table class="setup">{rows}</table>'
            f'<p class="note">{summary["unchanged"]:,} questions where RAG changed no score by {why.CHANGE} or more '
            "are not counted; the rules are tried top to bottom and the first that fits wins.</p>")


def trust_line(metric: str, t: dict) -> str:
    """One metric's trust verdict and the calibration figures behind it, in plain words."""
    label = METRIC_LABELS[metric]
    if t.get("calibrated") is False:
        return t["sentence"]
    detail = t["sentence"].removeprefix(f"{label}: ")
    return f"{label}: {TRUST_WORDS[t['trusted']]}. {detail[:1].upper()}{detail[1:]}"


def _trust(trust: dict, metrics: list[str]) -> str:
    """How far each metric's scores can be trusted, from the judge's calibration check."""
    out = ["<h2>Can the judge be trusted?</h2>"]
    for m in metrics:
        if m in trust:
            out.append(f'<p class="{"note" if trust[m]["trusted"] else "warn"}">{_e(trust_line(m, trust[m]))}</p>')
    return "".join(out)


def _people(human_review: dict) -> str:
    """How the judge agreed with the people who reviewed its scores, and the human-corrected
    difference (core.reviews); nothing when no one reviewed a score."""
    if not any(f["n_reviews"] for f in human_review.values()):
        return ""
    lines = [line for metric, f in human_review.items() for line in sentences(metric, f)]
    return "<h2>The judge against people</h2>" + "".join(f'<p class="note">{_e(line)}</p>' for line in lines)


def _gates(gates: list[dict]) -> str:
    """The latest regression-gate verdicts of this run against each baseline (`python -m core gate`)."""
    if not gates:
        return ""
    out = ["<h2>Regression gate</h2>"]
    for g in gates:
        failed = sum(not c["passed"] for c in g["checks"])
        verdict = "passed" if g["passed"] else f"failed {failed} of {len(g['checks'])} checks"
        mode = MODE_LABELS.get(g["mode"], g["mode"])
        out.append(f'<p class="finding">Against baseline run {_e(g["baseline"])} ({_e(mode)} answers, '
                   f'{g["shared_questions"]} shared questions, {_e(g["created_at"])}): {verdict}.</p>')
        out += [f'<p class="{"note" if c["passed"] else "warn"}">{_e(c["line"])}</p>' for c in g["checks"]]
    return "".join(out)


def _examples(store: Store, res: RunResults, metrics: list[str]) -> str:
    """The questions where retrieval helped most and hurt most (mean change over the metrics);
    only these questions' answers are read."""
    deltas = pd.concat([stats.paired(res.frame, m).set_index("question_id")["delta"] for m in metrics], axis=1)
    change = deltas.mean(axis=1, skipna=True).dropna().sort_values(kind="stable")
    best = list(change.index[::-1][:EXAMPLES])
    worst = [q for q in change.index[:EXAMPLES] if q not in best and change[q] < 0]
    items = {i["question_id"]: i for i in read_items(store, res.run, res.questions, best + worst)}
    out = ["<h2>Examples</h2>"]
    for title, ids in (("Where retrieval helped most", best), ("Where retrieval hurt most", worst)):
        if not ids:
            continue
        out.append(f"<h3>{_e(title)}</h3>")
        for qid in ids:
            item = items[qid]
            out.append(f'<div class="example"><div class="q">{_e(qid)} · {_e(item["question"])} '
                       f'(change {change[qid]:+.2f})</div><div class="pair">')
            for mode in ("llm_only", "rag"):
                a = item.get(mode) or {}
                scores = " · ".join(
                    f"{METRIC_LABELS[m]} " + ("unscored" if (s := a.get("scores", {}).get(m, {})).get("value") is None
                                              else f"{s['value']:.2f}") for m in metrics)
                out.append(f'<div><b>{_e(MODE_LABELS[mode])}</b> <span class="note">{_e(scores)}</span>'
                           f'<div class="answer">{_e(a.get("answer") or a.get("error") or "no answer")}</div></div>')
            out.append("</div></div>")
    return "".join(out)


def _method(run: dict, metrics: list[str]) -> str:
    items = "".join(f"<li><b>{_e(METRIC_LABELS[m])}</b>: {_e(METHOD[m])}</li>" for m in metrics if m in METHOD)
    return (
        "<h2>Method</h2><ul>" + items + "</ul>"
        f"<p>Scores were computed with RAGAS by the judge model <b>{_e(run['judge_model'])}</b>. A score the judge "
        "could not give is reported as unscored with its reason, never as zero, and is left out of the means and "
        "comparisons (the counts say how many). The judge itself is checked on a calibration set of answers "
        "known to be faithful, contradicting, subtly wrong or off-topic; a metric whose judge ranked the better "
        "answer first in fewer than 80% of the pairs is marked as not trustworthy.</p>"
        "<p>Each comparison pairs the two modes on the questions scored in both. The interval in brackets is a 95% "
        f"paired bootstrap confidence interval of the mean difference ({stats.RESAMPLES:,} resamples): if it "
        "excludes 0, the difference is unlikely to be chance among these questions. p is a Wilcoxon signed-rank "
        "test, Holm-corrected across the metrics. A question counts as better or worse when its score changed by "
        f"more than {stats.TIE_MARGIN:.2f}; smaller changes count as ties.</p>"
        + ("<p class=\"warn\">The embedded 135M judge is demo-grade: its scores show how the tool works, not how good "
           "the answers are. Judge with a capable model before drawing conclusions.</p>"
           if run["judge_model"].startswith("embedded:") else ""))
