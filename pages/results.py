"""Results: the comparison of the two modes, in numbers, charts, a table and per question."""
import pandas as pd
import streamlit as st

from core import charts, stats
from core.models import METRIC_LABELS, MODE_LABELS, RETRIEVAL_METRICS
from core.results import item
from pages import judge_noise, review, ui

QUESTION_CHOICES = 500  # past this many questions the drill-down offers the matches of a search

st.title("Results")
# The run, metric, tab and category live in the URL, so a view can be shared as a link.
run_id = ui.pick_run("results_run_pick", st.session_state.pop("results_run", None))  # "Open results" elsewhere
res = ui.results(run_id)
run, df = res.run, res.frame

st.caption(f"Question set **{ui.md(run.question_set)}** v{run.question_set_version} · knowledge base "
           f"**{ui.md(run.kb)}** · top-{run.top_k} {run.search_mode} · answers by {ui.md(run.answer_model)} · "
           f"judged by {ui.md(run.judge_model)} · status {run.status}")
ui.demo_judge_note(run.judge_model, run.config.get("faithfulness_judge", "ragas"))
ui.trust_marks(res.trust, run.metrics)
st.info("Both modes' faithfulness is judged against the **same** passages, those retrieved for each "
        "question, so the comparison is like for like.", icon=":material/balance:")

# -- headline -------------------------------------------------------------------------------
cards = [(metric, mode) for metric in run.metrics for mode in run.modes
         if metric not in RETRIEVAL_METRICS or mode == "rag"]  # the passages' metrics are scored on RAG items
cols = st.columns(len(cards))
for col, (metric, mode) in zip(cols, cards):
    fig = res.figures[(mode, metric)]
    delta = None
    c = res.findings.get(metric, {}).get("comparison") if mode == "rag" else None
    if c and c["mean_diff"] is not None:  # paired: only the questions scored in both modes
        delta = f"{c['mean_diff']:+.2f} vs LLM only on {c['n_pairs']:,} pairs"
    col.metric(f"{METRIC_LABELS[metric]} · {MODE_LABELS[mode]}", "—" if fig.mean is None else f"{fig.mean:.2f}",
               delta, help=f"mean of {fig.n_scored:,} scored answers; {fig.n_unscored:,} unscored")

if res.both_modes:
    for f in res.findings.values():
        st.markdown(f"**{ui.md(f['sentence'])}**")
        if f["noise_sentence"]:
            st.caption(ui.md(f["noise_sentence"]))
    st.caption(f"Brackets: 95% paired bootstrap confidence interval of the mean difference; p: Wilcoxon signed-rank, "
               f"Holm-corrected across the metrics; changes within ±{stats.TIE_MARGIN:.2f} count as ties. "
               "Questions unscored in either mode are left out and counted.")
    judge_noise.section(res)
review.agreement_section(res)

# -- charts: only the open tab is built and sent; each is built once per state of the run ----
metrics = list(run.metrics)
categories = sorted(c for c in df["category"].unique() if c)
ui.init_choice("results_metric", st.query_params.get("metric"), metrics)
metric = st.radio("Metric", metrics, format_func=METRIC_LABELS.get, horizontal=True, key="results_metric",
                  help="The metric of the per-question views")
st.query_params["metric"] = metric
t1, t2, t5, t6, t3, t4 = st.tabs(["Overview", "Per question", "Per category", "Why", "Faithfulness vs relevancy",
                                  "Table"], key="results_tab", on_change="rerun", bind="query-params")
if t1.open:
    with t1:
        if res.both_modes:
            comps = {m: stats.Comparison(**f["comparison"]) for m, f in res.findings.items()}
            st.plotly_chart(res.view("differences", lambda: charts.differences(comps)), width="stretch")
        st.plotly_chart(res.view("mean_bars", lambda: charts.mean_bars(df)), width="stretch")
        st.plotly_chart(res.view("distributions", lambda: charts.distributions(df)), width="stretch")
if t6.open:
    with t6:
        if res.both_modes:
            ui.why_section(res)
        else:
            st.caption("This run has one mode only, so RAG's effect on a question cannot be classified.")
if t2.open:
    with t2:
        if res.both_modes:
            st.plotly_chart(res.view(("deltas", metric), lambda: charts.deltas(df, metric)), width="stretch")
            st.plotly_chart(res.view(("dumbbell", metric), lambda: charts.dumbbell(df, metric)), width="stretch")
            worse = res.view(("hurt", metric), lambda: stats.hurt(df, metric))
            n_pairs = res.view(("n_pairs", metric), lambda: int(stats.paired(df, metric)["delta"].notna().sum()))
            st.markdown(f"**Where retrieval hurt** ({METRIC_LABELS[metric].lower()} lower with RAG): "
                        f"{len(worse):,} of {n_pairs:,} questions scored in both modes")
            if len(worse):
                ui.paged_dataframe(worse[["question_id", "question", "llm_only", "rag", "delta"]], "results_hurt_page",
                                   hide_index=True, width="stretch", column_config={
                                       "llm_only": st.column_config.NumberColumn("LLM only", format="%.2f"),
                                       "rag": st.column_config.NumberColumn("LLM + RAG", format="%.2f"),
                                       "delta": st.column_config.NumberColumn("change", format="%+.2f")})
        else:
            st.caption("The per-question comparison needs both modes in the run.")
if t5.open:
    with t5:
        if res.both_modes and categories:
            table = res.view("by_category", lambda: stats.by_category(df, metrics, cache=ui.store().intervals))
            st.plotly_chart(res.view("category_differences", lambda: charts.category_differences(table)),
                            width="stretch")
            st.dataframe(table.assign(metric=table["metric"].map(METRIC_LABELS))[
                ["category", "metric", "n_pairs", "n_excluded", "mean_diff", "ci_low", "ci_high", "p_value", "p_holm",
                 "wins", "ties", "losses"]], hide_index=True, width="stretch", column_config={
                "mean_diff": st.column_config.NumberColumn("mean change", format="%+.3f"),
                "ci_low": st.column_config.NumberColumn("CI low", format="%+.3f"),
                "ci_high": st.column_config.NumberColumn("CI high", format="%+.3f"),
                "p_value": st.column_config.NumberColumn("p", format="%.3f"),
                "p_holm": st.column_config.NumberColumn("p (Holm)", format="%.3f")})
        else:
            st.caption("The per-category comparison needs both modes and questions with a category.")
if t3.open:
    with t3:
        st.plotly_chart(res.view("scatter", lambda: charts.scatter(df)), width="stretch")
if t4.open:
    with t4:
        f1, f2, f3, f4 = st.columns(4)
        if "results_categories" not in st.session_state:
            st.session_state["results_categories"] = [c for c in st.query_params.get_all("category")
                                                      if c in categories]
        chosen_cats = f1.multiselect("Category", categories, key="results_categories")
        st.query_params["category"] = chosen_cats
        chosen_modes = f2.multiselect("Mode", list(run.modes), default=list(run.modes), format_func=MODE_LABELS.get)
        low, high = f3.slider("Score range", 0.0, 1.0, (0.0, 1.0), 0.05)
        only_unscored = f4.toggle("Only unscored")
        view = df[df["mode"].isin(chosen_modes)]
        if chosen_cats:
            view = view[view["category"].isin(chosen_cats)]
        unscored = view["value"].isna()
        view = view[unscored] if only_unscored else view[view["value"].between(low, high) | unscored]
        table = view.assign(mode=view["mode"].map(MODE_LABELS), metric=view["metric"].map(METRIC_LABELS))
        ui.paged_dataframe(table[["question_id", "question", "category", "mode", "metric", "value", "reason"]],
                           "results_table_page", hide_index=True, width="stretch",
                           column_config={"value": st.column_config.ProgressColumn("score", min_value=0, max_value=1,
                                                                                   format="%.2f"),
                                          "reason": "why unscored"})

# -- drill-down: one question, read on demand ----------------------------------------------
st.subheader("Question drill-down")
questions = res.questions.set_index("question_id")["question"]
ids = list(questions.index)
if len(ids) > QUESTION_CHOICES:
    wanted = st.text_input("Find a question", key="results_question_find", placeholder="words or an id")
    if wanted.strip():
        words = wanted.lower().split()
        hits = questions[questions.str.lower().map(lambda q: all(w in q for w in words)) | (questions.index == wanted)]
        ids = list(hits.index)
    st.caption(f"{min(len(ids), QUESTION_CHOICES):,} of {len(ids):,} matching questions offered below"
               + ("" if wanted.strip() else "; type words to find others"))
    ids = ids[:QUESTION_CHOICES]
if not ids:
    st.stop()
qid = st.selectbox("Question", ids, format_func=lambda q: f"{q} · {questions[q]}", key="results_question")
shown = item(ui.store(), res, qid)
st.markdown("**Question**")
st.text(shown["question"])
if shown.get("reference"):
    st.markdown("**Reference answer**")
    st.text(shown["reference"])
if res.both_modes:
    ui.why_line(res, qid)
review.reviewer_input()
answer_cols = st.columns(len(run.modes))
for col, mode in zip(answer_cols, run.modes):
    a = shown.get(mode)
    with col:
        st.markdown(f"#### {MODE_LABELS[mode]}")
        if a is None:
            st.caption("Not answered yet.")
            continue
        with st.container(border=True, height=320):
            if a["error"]:
                st.error(ui.md(a["error"]))
            st.text(a["answer"])
        if a["model"] == "imported":  # no latency or tokens were measured for it
            st.caption("Imported answer: not generated here, so no latency or token counts.")
        else:
            st.caption(f"{a['latency_s']:.1f} s · {a['prompt_tokens']} prompt + {a['completion_tokens']} "
                       f"completion tokens · {ui.md(a['model'])}")
        for metric_name, sc in a["scores"].items():
            label = METRIC_LABELS[metric_name]
            if sc["value"] is None:
                st.markdown(f"**{label}**: unscored — {ui.md(sc['reason'])}")
            else:
                st.markdown(f"**{label}**: {sc['value']:.2f}")
            details = sc.get("details") or {}
            if details.get("verdicts"):
                ui.draw_verdicts(details, (shown.get("rag") or {}).get("passages") or [])
            elif details.get("statements"):
                st.caption("Statements: " + ui.md(" · ".join(details["statements"])))
            ui.draw_metric_details(details)
            if details.get("generated_questions"):
                st.caption("Questions the judge generated from this answer:")
                st.dataframe(pd.DataFrame(details["generated_questions"]), hide_index=True, width="stretch")
            if "judge" in sc:  # a stored score (one not there yet has only a value and a reason)
                review.score_form(res, qid, mode, metric_name, sc["value"])

rag = shown.get("rag")
passages = (rag or {}).get("passages") or []
with st.expander(f"Retrieved passages ({len(passages)}) — the evidence both answers were judged against",
                 expanded=False):
    for n, p in enumerate(passages, 1):
        score = "from the imported file" if p["score"] is None else f"score {p['score']:.3f}"
        st.caption(f"#{n} · {score} · {ui.md(p['document'])}" +
                   (f" › {ui.md(p['section'])}" if p["section"] else ""))
        st.text(p["text"])
