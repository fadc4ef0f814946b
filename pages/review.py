"""Human review on the Results page: a compact form per score on the drill-down, and the
judge's agreement with people beside its calibration figures."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.models import METRIC_LABELS, REVIEW_VERDICTS
from core.reviews import MAX_NOTE, MAX_REVIEWER, default_reviewer, review, sentences
from pages import ui

OWN = "own score"
REVIEWER_KEY = "results_reviewer"


def reviewer_input() -> None:
    """The reviewer's name, asked once for every form on the page and kept for the session."""
    if REVIEWER_KEY not in st.session_state:
        st.session_state[REVIEWER_KEY] = default_reviewer()
    st.text_input("Reviewer", key=REVIEWER_KEY, max_chars=MAX_REVIEWER,
                  help="Your name, stored with each review you give (default: RAGEVAL_REVIEWER or the login name)")


def score_form(res, question_id: str, mode: str, metric: str, judge_value: float | None) -> None:
    """The reviews one score has, and a form to add yours (or replace it)."""
    rv = res.reviews
    mine = rv[(rv["question_id"] == question_id) & (rv["mode"] == mode) & (rv["metric"] == metric)]
    label = f"Reviews ({len(mine)})" if len(mine) else "Review this score"
    with st.expander(label, expanded=False):
        for r in mine.itertuples():
            said = r.verdict or f"own score {r.score:.2f}"
            saw = "unscored" if pd.isna(r.judge_value) else f"{r.judge_value:.2f}"
            st.text(f"{r.reviewer} · {r.created_at[:16].replace('T', ' ')} · {said} (the judge's score was {saw})"
                    + (f"\n{r.note}" if r.note else ""))
        key = f"results_review_{question_id}_{mode}_{metric}"
        with st.form(key, border=False):
            options = [*REVIEW_VERDICTS, OWN] if judge_value is not None else [OWN]
            choice = st.radio("Verdict", options, horizontal=True, key=f"{key}_verdict",
                              help="right: you accept the judge's score; wrong: it is on the wrong side of 0.5; "
                                   "own score: what you would give")
            start = 0.5 if judge_value is None else judge_value
            own = st.number_input(f"Your score (with “{OWN}”)", 0.0, 1.0, start, 0.05, format="%.2f",
                                  key=f"{key}_score")
            note = st.text_area("Note", key=f"{key}_note", max_chars=MAX_NOTE, height=68)
            if st.form_submit_button("Save review", icon=":material/rate_review:", key=f"{key}_save"):
                with ui.guard("review"):
                    review(ui.store(), res.run.id, question_id, mode, metric,
                           reviewer=st.session_state.get(REVIEWER_KEY, ""), verdict=None if choice == OWN else choice,
                           score=own if choice == OWN else None, note=note)
                    ui.refresh()
                    st.rerun()


def agreement_section(res) -> None:
    """Per metric: how often people agreed with the judge on this run, beside how the judge did
    on the calibration set, and the human-corrected difference once enough is reviewed."""
    figures = res.human_review
    if not figures:
        return
    with st.container(border=True):
        st.markdown("**The judge against people**")
        if not any(f["n_reviews"] for f in figures.values()):
            st.caption("No one has reviewed a score of this run yet: mark scores right or wrong, or give your own, "
                       "in the drill-down below.")
            return
        rows = []
        for metric, f in figures.items():
            a, t = f["agreement"], res.trust.get(metric, {})
            rows.append({"metric": METRIC_LABELS.get(metric, metric), "reviews": f["n_reviews"],
                         "agreement": a["accuracy"], "kappa": a["kappa"], "n": a["n"],
                         "calibration": t.get("accuracy"), "pairs": t.get("n")})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
            "agreement": st.column_config.NumberColumn("agreement with people", format="percent"),
            "kappa": st.column_config.NumberColumn("Cohen's κ", format="%.2f"),
            "n": st.column_config.NumberColumn("scores compared"),
            "calibration": st.column_config.NumberColumn("calibration accuracy", format="percent"),
            "pairs": st.column_config.NumberColumn("calibration pairs")})
        for metric, f in figures.items():
            for line in sentences(metric, f):
                st.markdown(ui.md(line))
        st.caption("A score of 0.5 or more counts as high; a person agrees with the judge when they put the score "
                   "on the same side (right = agrees, wrong = the other side). The corrected difference is "
                   "prediction-powered inference: the judge's differences on every question, corrected by its mean "
                   "error on the questions people reviewed in both modes (a random sample of them is assumed).")
