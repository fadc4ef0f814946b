"""`python -m core`: the headless commands, calling the same functions as the pages.

Errors a user can fix print as one line on stderr with exit code 2; set RAGEVAL_DEBUG=1
to see tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from core.config import load_settings
from core.errors import RagEvalError
from core.gate import MAX_DROP, MIN_PAIRS
from core.models import DEFAULT_METRICS, METRICS, MODES
from core.models import REVIEW_VERDICTS


def _progress_bar(desc: str):
    """Progress for the (done, total, what) callback: a tqdm bar on a terminal; in a log
    (a detached worker, CI) one line per step instead of carriage-return noise."""
    if not sys.stderr.isatty():
        last = {"step": None}

        def log_line(done: int, total: int, what: str):
            if total and (done, total) != last["step"]:  # countable steps only: an error stays one line
                last["step"] = (done, total)
                print(f"{desc}: {done}/{total} {what}", file=sys.stderr, flush=True)
        log_line.close = lambda: None
        return log_line

    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="item", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int, what: str):
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.set_postfix_str(what[:40], refresh=False)
        bar.refresh()
    update.close = bar.close
    return update


def _csv_list(value: str, allowed) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    for v in items:
        if v not in allowed:
            raise RagEvalError(f"'{v}' is not one of {', '.join(allowed)}")
    return items


def _context():
    from core.workspace import open_workspace

    settings = load_settings()
    return settings, open_workspace(settings)


# The job a launched worker (`work KEY TOKEN`) claimed, for the command it then runs.
_claimed = None


def _claim(store, kind: str, target: str, command: tuple[str, ...]):
    """The job this command works under: the one a launched worker claimed, else a new one
    started here (refused while another process holds it)."""
    from core import jobs

    if _claimed is not None and _claimed.job.key == jobs.key(kind, target):
        return _claimed
    return jobs.start(store, kind, target, command)


def _embedder(settings, run=None):
    """The settings' encoder, or the one `run` was made with (its pinned setting)."""
    from core.embeddings import get_embedder

    return get_embedder(run.config.get("embedding_model", settings.embedding_model) if run else
                        settings.embedding_model)


def cmd_ingest(args) -> int:
    from core.ingest import ingest

    _demo_specs(args)
    engine = _ingest_engine(args)
    settings, store = _context()
    bar = _progress_bar(f"ingest → {args.kb}")
    try:
        report = ingest(args.paths, args.kb, store, _embedder(settings), settings, progress=bar, engine=engine)
    finally:
        bar.close()
    for s in report.skipped:
        print(f"skipped {s.name} in {s.source}: {s.reason}", file=sys.stderr)
    for source in report.removed_sources:
        print(f"{source} yields no documents any more: its chunks were removed from {args.kb}", file=sys.stderr)
    if report.index is not None and not report.index.meets_target:
        print(f"warning: {args.kb}: {report.index.describe()}", file=sys.stderr)
    print(f"{args.kb}: {report.documents} documents ({report.unchanged} unchanged, {report.embedded_documents} "
          f"embedded, {report.deleted_documents} deleted), {report.chunks_embedded} chunks embedded, "
          f"{len(report.skipped)} files skipped, {report.seconds:.1f} s"
          + (f", on {report.engine}" if report.engine not in ("", "local") else ""))
    return 0


def _ingest_engine(args):
    """`--engine ray [--address ADDR] [--workers N]`: the Ray engine; None for the local one."""
    if args.engine == "ray":
        from core.ray_ingest import RayEngine

        return RayEngine(args.address or "", args.workers)
    if args.address or args.workers:
        raise RagEvalError("--address and --workers choose where --engine ray runs; add --engine ray")
    return None


def _demo_specs(args) -> None:
    """`ingest --demo`: the demo source list (beside any other specs) into 'demo' unless --kb says."""
    if args.demo:
        from core.sources import DEMO_KB, demo_specs

        args.paths = demo_specs() + list(args.paths)
        args.kb = args.kb or DEMO_KB
    if not args.paths:
        raise RagEvalError("name what to ingest (files, folders, .zip, pypi:NAME, stdlib:MODULE) or use --demo")
    if not args.kb:
        raise RagEvalError("name the knowledge base with --kb NAME")


def cmd_questions(args) -> int:
    from core.questions import parse_file

    settings, store = _context()
    if args.action == "import":
        parsed = parse_file(args.file)
        qs = store.save_question_set(args.name, parsed.questions, origin=os.path.basename(args.file))
        for note in parsed.dropped:
            print(f"{os.path.basename(args.file)}: {note}", file=sys.stderr)
        if parsed.answers:
            print(f"{len(parsed.answers)} questions come with answers: `python -m core runs import FILE --kb KB` "
                  "scores them without generating new ones", file=sys.stderr)
        if args.json:
            print(json.dumps({"name": qs.name, "version": qs.version, "count": len(qs.questions),
                              "dropped": len(parsed.dropped)}))
        else:
            print(f"saved question set '{qs.name}' version {qs.version}: {len(qs.questions)} questions")
    else:
        sets = store.question_sets()
        if args.json:
            print(json.dumps(sets))
        else:
            for s in sets:
                print(f"{s['name']}\tv{s['version']}\t{s['count']} questions\t{s['created_at']}")
    return 0


def cmd_questions_export(args) -> int:
    from core.export import format_of, questions_bytes

    _, store = _context()
    fmt = format_of(args.out)
    qs = store.question_set(args.name, args.version)
    with open(args.out, "wb") as f:
        f.write(questions_bytes(qs.questions, fmt))
    print(f"exported question set '{qs.name}' version {qs.version} ({len(qs.questions)} questions) to {args.out}")
    return 0


def cmd_questions_delete(args) -> int:
    _, store = _context()
    n = store.delete_question_set(args.name)
    print(f"deleted question set '{args.name}' ({n} versions)")
    return 0


def cmd_questions_versions(args) -> int:
    _, store = _context()
    versions = store.question_set_versions(args.name)
    if args.json:
        print(json.dumps(versions))
    else:
        for v in versions:
            print(f"v{v['version']}\t{v['count']} questions\t{v['created_at']}\t{v['origin']}")
    return 0


def cmd_runs_import(args) -> int:
    from core.imports import import_run
    from core.questions import parse_file

    settings, store = _context()
    parsed = parse_file(args.file)
    origin = os.path.basename(args.file)
    for note in parsed.dropped:
        print(f"{origin}: {note}", file=sys.stderr)
    run = import_run(store, settings, parsed, origin, args.kb, set_name=args.name, metrics=args.metrics,
                     top_k=args.top_k, search_mode=args.search_mode)
    print(f"imported run {run.id}: {len(parsed.answers)} questions with answers ({', '.join(run.modes)}), "
          f"question set '{run.question_set}' version {run.question_set_version}", file=sys.stderr)
    if not args.score:
        print(f"score it later with `python -m core resume {run.id}`", file=sys.stderr)
        print(run.id)
        return 0
    return _execute(settings, store, run.id)


def cmd_runs_delete(args) -> int:
    from core.runs import delete

    _, store = _context()
    delete(store, args.run_id)
    print(f"deleted run {args.run_id} with its answers and scores")
    return 0


def _execute(settings, store, run_id: str, rescore: bool = False) -> int:
    """Execute a run; exit 0 only when it is done (every item answered and scored, or failed for
    good), 3 when it is incomplete (retryable failures left), cancelled or failed."""
    from core.results import counts_line
    from core.executor import Executor

    bar = _progress_bar(f"run {run_id}")
    claim = _claim(store, "run", run_id, ("rescore" if rescore else "resume", run_id))
    try:
        outcome = Executor(store, settings, _embedder(settings, store.run(run_id)), run_id, progress=bar,
                           claim=claim).execute(rescore=rescore)
    finally:
        bar.close()
    hint = f"; `python -m core resume {run_id}` retries what may pass" if outcome.run.status == "incomplete" else ""
    print(f"run {run_id} {outcome.run.status}: {outcome.answered} answers and {outcome.scored} scores computed "
          f"in {outcome.seconds:.1f} s; {counts_line(outcome.counts)}{hint}", file=sys.stderr)
    print(run_id)
    return 0 if outcome.run.status == "done" else 3


def cmd_run(args) -> int:
    from core.runs import create_run

    settings, store = _context()
    run = create_run(store, settings, args.kb, args.questions, modes=args.modes, metrics=args.metrics,
                     limit=args.limit, top_k=args.top_k, search_mode=args.search_mode)
    print(f"created run {run.id}", file=sys.stderr)
    if args.detach:
        from core.runs import launch

        job = launch(settings, store, run.id)
        print(f"executing in the background (log {job.log}); follow it with `python -m core show {run.id}`",
              file=sys.stderr)
        print(run.id)
        return 0
    return _execute(settings, store, run.id)


def cmd_resume(args) -> int:
    settings, store = _context()
    return _execute(settings, store, args.run_id, rescore=args.command == "rescore")


def cmd_cancel(args) -> int:
    from core.runs import cancel

    _, store = _context()
    print(cancel(store, args.run_id))
    return 0


def cmd_work(args) -> int:
    """A launched worker: claim the pending job issued with TOKEN, then run its command."""
    global _claimed
    from core import jobs

    _, store = _context()
    try:
        _claimed = jobs.claim(store, args.key, args.token)
    except jobs.JobBusy as e:  # cancelled before it started, or another worker has it: nothing to do
        print(f"{e}; nothing to do", file=sys.stderr)
        return 0
    with _claimed:
        code = main(list(_claimed.job.command))
        if _claimed.job.status in jobs.ACTIVE:  # the command did not record how it ended
            _claimed.finish("done" if code == 0 else "failed", "" if code == 0 else f"exit code {code}")
    return code


def cmd_show(args) -> int:
    from core.models import METRIC_LABELS, MODE_LABELS
    from core.results import RawJSON, counts_line, document, load
    from core.reviews import sentences

    _, store = _context()
    res = load(store, args.run_id)
    if args.json:
        raw = RawJSON()  # passages and the judge's details go out as they are stored
        sys.stdout.flush()
        sys.stdout.buffer.write(raw.dumps(document(store, res, raw)) + b"\n")
        return 0
    r = res.run_json()
    print(f"run {r['id']} [{r['status']}] kb={r['kb']} questions={r['question_set']} v{r['question_set_version']} "
          f"answer={r['answer_model']} judge={r['judge_model']} top_k={r['top_k']}")
    print(f"  {counts_line(res.counts)}")
    for mode, metrics in res.modes_json().items():
        for metric, m in metrics.items():
            mean = "—" if m["mean"] is None else f"{m['mean']:.3f}"
            retry = f" ({m['n_unscored_retryable']} to retry)" if m["n_unscored_retryable"] else ""
            print(f"  {MODE_LABELS[mode]:<10} {METRIC_LABELS[metric]:<17} mean {mean}  "
                  f"scored {m['n_scored']}  unscored {m['n_unscored']}{retry}  missing {m['n_missing']}")
    for f in res.findings.values():
        print(f["sentence"])
        if f["noise_sentence"]:
            print(f"  {f['noise_sentence']}")
    for metric in r["metrics"]:
        if metric in res.trust:
            print(f"  judge check: {res.trust[metric]['sentence']}")
        if metric in res.human_review:
            for line in sentences(metric, res.human_review[metric]):
                print(f"  people: {line}")
    if res.both_modes:
        from core import why

        counted = why.summary(res.why)
        print("why RAG changed the scores: " + ", ".join(f"{why.CLASSES[k]} {n}" for k, n in counted["counts"].items())
              + f" ({counted['unchanged']} unchanged)")
    return 0


def cmd_gate(args) -> int:
    """Gate run RUN against --baseline: one line per metric, JUnit XML for CI; exit 0 passed, 1 failed."""
    from core import gate
    from core.models import MODE_LABELS
    from core.results import load
    from core.runs import setup_differences

    if args.run_id == args.baseline:
        raise RagEvalError(f"run {args.run_id} is its own baseline: name another run with --baseline")
    _, store = _context()
    base, cand = (load(store, run_id, findings=False) for run_id in (args.baseline, args.run_id))
    result = gate.decide(base.frame, cand.frame, args.limits, mode=args.mode, default_max_drop=args.max_drop,
                         require_significant=args.require_significant, min_pairs=args.min_pairs)
    for run in (base.run, cand.run):
        if run.status != "done":
            print(f"warning: run {run.id} is {run.status}: its questions not scored yet are left out", file=sys.stderr)
    if base.run.judge_model != cand.run.judge_model:
        print("warning: the runs were judged by different judges, so part of any drop may be the judges'",
              file=sys.stderr)
    if args.junit:
        try:
            with open(args.junit, "wb") as f:
                f.write(gate.junit_xml(result, f"rag-eval gate: {cand.run.id} vs baseline {base.run.id}"))
        except OSError as e:
            raise RagEvalError(f"--junit {args.junit}: cannot write it ({e.strerror})") from None
    differs = setup_differences(base.run, cand.run)
    verdicts = {"candidate": cand.run.id, "baseline": base.run.id, **result.to_json(),
                "differences": [{"what": w, "baseline": x, "candidate": y} for w, x, y in differs]}
    # the latest verdicts against each baseline and mode are kept with the candidate: show --json,
    # the exports and the report carry them
    store.put_gate(cand.run.id, base.run.id, result.mode, result.passed, verdicts)
    if args.json:
        print(json.dumps(verdicts))
    else:
        print(f"gate: run {cand.run.id} against baseline {base.run.id}, {MODE_LABELS[result.mode]} answers, "
              f"{result.shared} shared questions; what differs: "
              + ("; ".join(f"{w} {x} → {y}" for w, x, y in differs) if differs else "nothing in the setup"))
        for c in result.checks:
            print(c.line)
        n = len(result.checks)
        print(f"gate passed: {n} of {n} checks" if result.passed else f"gate failed: {result.failures} of {n} checks")
    return 0 if result.passed else 1


class _GateLimits(argparse.Action):
    """`--metric M` gates M; `--max-drop D` sets the allowance of the metric named just before it,
    or, before any `--metric`, of every metric that has none of its own."""

    def __call__(self, parser, namespace, value, option_string=None):
        if namespace.limits is None:
            namespace.limits = {}
        limits = namespace.limits
        if option_string == "--metric":
            if value in limits:
                parser.error(f"--metric {value} is given twice")
            limits[value] = None
        elif not limits:
            namespace.max_drop = value
        else:
            last = next(reversed(limits))
            if limits[last] is not None:
                parser.error(f"--max-drop is given twice for {last}")
            limits[last] = value


def cmd_report(args) -> int:
    from core.report import FORMATS, export_bytes, html_report
    from core.results import load

    fmt = os.path.splitext(args.out)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise RagEvalError(f"--out {args.out}: name a .html, .csv, .parquet or .json file")
    _, store = _context()
    res = load(store, args.run_id)
    data = html_report(store, res).encode("utf-8") if fmt == "html" else export_bytes(store, res, fmt)
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def cmd_rejudge(args) -> int:
    from core.variance import rejudge

    settings, store = _context()
    store.run(args.run_id)
    bar = _progress_bar(f"rejudge {args.run_id}")
    command = ("rejudge", args.run_id, "--repeats", str(args.repeats), "--temperature", str(args.temperature))
    try:
        with _claim(store, "rejudge", args.run_id, command) as claim:
            n = rejudge(store, settings, _embedder(settings, store.run(args.run_id)), args.run_id, repeats=args.repeats,
                        temperature=args.temperature, metrics=args.metrics, progress=claim.follow(bar),
                        cancelled=claim.cancelled)
            claim.finish("cancelled" if claim.cancelled() else "done")
    finally:
        bar.close()
    print(f"run {args.run_id}: {n} repeat judgings made; `python -m core show {args.run_id}` shows the judge's noise",
          file=sys.stderr)
    return 0


def cmd_review(args) -> int:
    """One person's review of one score: right, wrong, or their own score, with a note."""
    from core.reviews import default_reviewer, review

    _, store = _context()
    r = review(store, args.run_id, args.question_id, args.mode, args.metric, verdict=args.verdict,
               score=args.score, note=args.note, reviewer=args.reviewer or default_reviewer())
    said = r.verdict or f"score {r.score:.2f}"
    judged = "unscored" if r.judge_value is None else f"{r.judge_value:.2f}"
    print(f"{r.reviewer}'s review of {r.question_id} {r.mode} {r.metric} (judge: {judged}) stored: {said}")
    return 0


def cmd_runs(args) -> int:
    _, store = _context()
    runs = store.runs()
    if args.json:
        print(json.dumps([{"id": r.id, "created_at": r.created_at, "status": r.status, "kb": r.kb,
                           "question_set": r.question_set, "modes": list(r.modes)} for r in runs]))
    else:
        for r in runs:
            print(f"{r.id}\t{r.status}\t{r.kb}\t{r.question_set} v{r.question_set_version}\t{','.join(r.modes)}")
    return 0


def cmd_kb(args) -> int:
    _, store = _context()
    kbs = {kb: store.kb_sources(kb) for kb in store.kb_names()}
    indexes = {kb: store.vector_index(kb) for kb in kbs}
    if args.json:
        print(json.dumps(kbs))
    else:
        for kb, sources in kbs.items():
            print(f"{kb}: {sum(s['documents'] for s in sources)} documents, {sum(s['chunks'] for s in sources)} chunks")
            index = indexes[kb]
            print(f"  vector search: {index.describe() if index else 'exact'}")
            if index is not None and not index.meets_target:
                print(f"  warning: vector search in {kb} misses passages exact search finds", file=sys.stderr)
            for s in sources:
                print(f"  {s['source']}\t{s['documents']} documents\t{s['chunks']} chunks")
    return 0


def cmd_judge(args) -> int:
    """`judge check`: the configured judge (or --judge-model) against the calibration set."""
    import dataclasses

    from core.calibration import check_configured_judge, figures

    settings, store = _context()
    cfg = settings.judge_model
    if args.judge_model:
        cfg = dataclasses.replace(cfg, model=args.judge_model)
    bar = _progress_bar("judge check")
    launched = _claimed if _claimed is not None and _claimed.job.kind == "judge_check" else None
    try:
        check, reused = check_configured_judge(store, settings, lambda: _embedder(settings), cfg=cfg,
                                               limit=args.limit, force=args.force, progress=bar, claim=launched)
    finally:
        bar.close()
    figs = figures(check)
    if args.json:
        print(json.dumps({"judge": check.label, "identity": check.identity, "items": check.items,
                          "reused": reused, "checked_at": check.created_at, "metrics": figs}))
        return 0
    print(f"judge {check.label}: {check.items} calibration items, {check.seconds / check.items:.1f} s/item"
          + (f" (stored check from {check.created_at}; --force to run it again)" if reused else ""))
    for f in figs.values():
        print(f"  {f['sentence']}")
        if f["unscored"]:
            reasons = "; ".join(f"{n}× {r}" for r, n in f["unscored_reasons"].items())
            print(f"    unscored {f['unscored']}/{f['scored_answers']} answers: {reasons}")
    return 0


def _axis(axis: str):
    """An experiment axis's values from a comma-separated list (`base`: the base knowledge base's
    chunks or encoder, or the settings' answer model)."""
    def parse(text: str) -> list:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        if axis in ("top_k", "chunk_tokens"):
            try:
                return [None if axis == "chunk_tokens" and v == "base" else int(v) for v in values]
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r}: use whole numbers" +
                                                 (" or base" if axis == "chunk_tokens" else "")) from None
        if axis == "embedding_model":
            return [None if v == "base" else os.path.abspath(v) for v in values]
        return values
    return parse


def _answer_models(settings, names: list[str] | None) -> list | None:
    """Answer models named on the command line: `base` (the settings' answer model), a label the Run
    page offers, a GGUF file (the embedded backend), or another model name on the settings' endpoint."""
    import dataclasses

    from core.runs import model_choices

    if not names:
        return None
    choices, out = model_choices(settings), []
    for name in names:
        cfg = settings.answer_model
        if name == "base":
            out.append(cfg)
        elif name in choices:
            out.append(choices[name])
        elif name.endswith(".gguf"):
            if not os.path.isfile(name):
                raise RagEvalError(f"--answer-model {name}: no such file")
            embedded = cfg if cfg.backend == "embedded" else type(cfg)()
            out.append(dataclasses.replace(embedded, model=os.path.abspath(name)))
        elif cfg.backend == "openai":
            out.append(dataclasses.replace(cfg, model=name))
        else:
            raise RagEvalError(f"--answer-model {name}: name base, a .gguf file, one of {', '.join(choices)}, "
                               "or a model of the answer endpoint (RAGEVAL_ANSWER_BACKEND=openai)")
    return out


def _print_board(store, exp_id: str, baseline: int = 1, mode: str | None = None, as_json: bool = False) -> None:
    from core.experiments import leaderboard

    board = leaderboard(store, exp_id, baseline - 1, mode)
    if as_json:
        print(json.dumps(board.to_json()))
    else:
        print("\n".join(board.lines()))


def cmd_experiment(args) -> int:
    from core import experiments

    settings, store = _context()
    if args.action == "list":
        exps = store.experiments()
        if args.json:
            print(json.dumps([{"id": e.id, "name": e.name, "created_at": e.created_at,
                               "status": experiments.status(store, e), "kb": e.kb, "question_set": e.question_set,
                               "configs": len(e.configs)} for e in exps]))
        else:
            for e in exps:
                print(f"{e.id}\t{experiments.status(store, e)}\t{e.name}\t{len(e.configs)} configuration"
                      f"{'s' if len(e.configs) > 1 else ''}\t"
                      f"{e.question_set} v{e.question_set_version} on {e.kb}")
        return 0
    if args.action == "show":
        _print_board(store, args.exp_id, args.baseline, args.mode, args.json)
        return 0
    if args.action == "cancel":
        print(experiments.cancel(store, args.exp_id))
        return 0
    if args.action == "delete":
        deleted = experiments.delete(store, args.exp_id, with_runs=args.runs)
        print(f"deleted experiment {args.exp_id}" + (f" and its {len(deleted)} runs" if args.runs else
                                                     "; its runs are kept (--runs deletes them too)"))
        return 0
    if args.action == "run":
        exp = experiments.create_experiment(
            store, settings, args.name, args.kb, args.questions, modes=args.modes, metrics=args.metrics,
            limit=args.limit, max_configs=args.max_configs, top_k=args.top_k, search_mode=args.search_mode,
            chunk_tokens=args.chunk_size, embedding_model=args.encoder,
            answer_model=_answer_models(settings, args.answer_model))
        n = len(exp.configs)
        print(f"created experiment {exp.id}: {n} configuration{'s' if n > 1 else ''}", file=sys.stderr)
        if args.detach:
            job = experiments.launch(settings, store, exp.id)
            print(f"executing in the background (log {job.log}); follow it with `python -m core experiment show "
                  f"{exp.id}`", file=sys.stderr)
            print(exp.id)
            return 0
        exp_id = exp.id
    else:
        exp_id = args.exp_id
    bar = _progress_bar(f"experiment {exp_id}")
    claim = _claim(store, "experiment", exp_id, ("experiment", "resume", exp_id))
    try:
        exp = experiments.execute(store, settings, exp_id, claim=claim, progress=bar)
    finally:
        bar.close()
    print("\n".join(experiments.leaderboard(store, exp_id).lines()), file=sys.stderr)
    print(exp_id)
    return 0 if exp.status == "done" else 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="RAG Eval Studio, headless.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="ingest files, folders, .zip archives, pypi:NAME[==VERSION] or "
                                      "stdlib:MODULE into a knowledge base")
    s.add_argument("paths", nargs="*")
    s.add_argument("--kb", help="knowledge base name (with --demo: demo)")
    s.add_argument("--demo", action="store_true", help="the demo sources behind the seed questions "
                                                       "(data/demo_sources.txt)")
    s.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where chunks are embedded and written: this process (default) or Ray workers")
    s.add_argument("--address", help="with --engine ray: a Ray cluster (HOST:PORT, ray://HOST:PORT or auto); "
                                     "default: a local Ray started for the ingest")
    s.add_argument("--workers", type=int, help="with --engine ray: workers embedding at once, one CPU each "
                                               "(default: every CPU of the cluster)")
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("questions", help="import or list question sets")
    qs = s.add_subparsers(dest="action", required=True)
    i = qs.add_parser("import", help="import a CSV, JSON, JSONL or evaluation-markdown file as a set")
    i.add_argument("file")
    i.add_argument("--name", required=True)
    i.add_argument("--json", action="store_true", help="print a JSON object (with 'count') as the last line")
    ls = qs.add_parser("list", help="list question sets")
    ls.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_questions)
    e = qs.add_parser("export", help="write a question set to a .csv, .json, .jsonl or .xlsx file")
    e.add_argument("name")
    e.add_argument("--version", type=int, help="a saved version (default: the latest)")
    e.add_argument("--out", required=True, help="the file to write; its extension chooses the format")
    e.set_defaults(fn=cmd_questions_export)
    d = qs.add_parser("delete", help="delete every version of a question set (refused while runs use it)")
    d.add_argument("name")
    d.set_defaults(fn=cmd_questions_delete)
    v = qs.add_parser("versions", help="a question set's saved versions")
    v.add_argument("name")
    v.add_argument("--json", action="store_true")
    v.set_defaults(fn=cmd_questions_versions)

    s = sub.add_parser("run", help="answer a question set in each mode and score every answer")
    s.add_argument("--kb", required=True)
    s.add_argument("--questions", default="default", help="question set name (default: default)")
    s.add_argument("--modes", type=lambda v: _csv_list(v, MODES), default=MODES, help="llm_only,rag")
    s.add_argument("--metrics", type=lambda v: _csv_list(v, METRICS), default=DEFAULT_METRICS,
                   help=f"comma-separated, of {','.join(METRICS)} (default: {','.join(DEFAULT_METRICS)})")
    s.add_argument("--limit", type=int, help="only the first N questions")
    s.add_argument("--top-k", type=int)
    s.add_argument("--search-mode", choices=("vector", "fts", "hybrid"))
    s.add_argument("--detach", action="store_true", help="execute in a background process and return at once")
    s.set_defaults(fn=cmd_run)

    for name, text in (("resume", "finish what a run is missing"),
                       ("rescore", "score a run's answers again (cached judge calls are reused)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("run_id")
        s.set_defaults(fn=cmd_resume)

    s = sub.add_parser("cancel", help="ask a running run to stop")
    s.add_argument("run_id")
    s.set_defaults(fn=cmd_cancel)

    s = sub.add_parser("work", help="(internal) the worker of a launched job: claims it, then runs its command")
    s.add_argument("key")
    s.add_argument("token")
    s.set_defaults(fn=cmd_work)

    s = sub.add_parser("show", help="a run's scores and answers")
    s.add_argument("run_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("report", help="write a run's report (.html) or its per-item results (.csv, .parquet, .json)")
    s.add_argument("run_id")
    s.add_argument("--out", required=True, help="FILE.html, FILE.csv, FILE.parquet or FILE.json")
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser("gate", help="fail (exit 1) when a run scores worse than a baseline run by more than allowed")
    s.add_argument("run_id", metavar="RUN", help="the candidate run")
    s.add_argument("--baseline", required=True, metavar="RUN", help="the run to compare with, on the questions both asked")
    s.add_argument("--metric", choices=METRICS, action=_GateLimits, dest="limits",
                   help="a metric to gate (repeatable; default: every metric both runs have)")
    s.add_argument("--max-drop", type=float, action=_GateLimits, dest="limits", metavar="DROP",
                   help="the drop (baseline mean − candidate mean) allowed for the --metric before it; "
                        f"before any --metric, for every metric (default {MAX_DROP})")
    s.set_defaults(max_drop=MAX_DROP)
    s.add_argument("--mode", choices=MODES, default="rag", help="the answers gated (default: rag)")
    s.add_argument("--require-significant", action="store_true",
                   help="a drop over the allowance fails only when its 95%% interval excludes zero")
    s.add_argument("--min-pairs", type=int, default=MIN_PAIRS, metavar="N",
                   help=f"fewest questions scored in both runs for a check to be measured (default {MIN_PAIRS})")
    s.add_argument("--junit", metavar="FILE.xml", help="also write the verdicts as JUnit XML")
    s.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")
    s.set_defaults(fn=cmd_gate)

    s = sub.add_parser("rejudge", help="judge a run's answers again k times to measure the judge's own noise")
    s.add_argument("run_id")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--temperature", type=float, default=0.7, help="above 0, so each repeat is a fresh sample")
    s.add_argument("--metrics", type=lambda v: _csv_list(v, METRICS), help="only these metrics (default: the run's)")
    s.set_defaults(fn=cmd_rejudge)

    s = sub.add_parser("review", help="review one score of a run: right, wrong, or your own score")
    s.add_argument("run_id")
    s.add_argument("question_id")
    s.add_argument("mode", choices=MODES)
    s.add_argument("metric")
    said = s.add_mutually_exclusive_group(required=True)
    said.add_argument("--verdict", choices=REVIEW_VERDICTS,
                      help="right: you accept the judge's score; wrong: it is on the wrong side of 0.5 (a poor "
                           "answer scored high or a good one low); to correct it otherwise, give --score")
    said.add_argument("--score", type=float, help="your own score, 0 to 1")
    s.add_argument("--note", default="")
    s.add_argument("--reviewer", help="your name (default: RAGEVAL_REVIEWER, else USER)")
    s.set_defaults(fn=cmd_review)

    s = sub.add_parser("runs", help="list runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_runs)
    rs = s.add_subparsers(dest="runs_action")  # `runs` alone lists
    i = rs.add_parser("import", help="import a file that holds answers as a run, and score it")
    i.add_argument("file", help="evaluation-markdown, or CSV/TSV/JSON/JSONL/XLSX with llm_only_answer / rag_answer")
    i.add_argument("--kb", required=True, help="knowledge base for evidence where the file has no rag_contexts")
    i.add_argument("--name", help="question set name (default: from the file name)")
    i.add_argument("--metrics", type=lambda v: _csv_list(v, METRICS), default=DEFAULT_METRICS,
                   help=f"comma-separated, of {','.join(METRICS)} (default: {','.join(DEFAULT_METRICS)})")
    i.add_argument("--top-k", type=int)
    i.add_argument("--search-mode", choices=("vector", "fts", "hybrid"))
    i.add_argument("--score", action=argparse.BooleanOptionalAction, default=True,
                   help="score the answers now (default), or only store them")
    i.set_defaults(fn=cmd_runs_import)
    d = rs.add_parser("delete", help="delete a run with its answers and scores")
    d.add_argument("run_id")
    d.set_defaults(fn=cmd_runs_delete)

    s = sub.add_parser("experiment", help="run a question set over a grid of settings and rank them against a baseline")
    xs = s.add_subparsers(dest="action", required=True)
    r = xs.add_parser("run", help="create an experiment and execute its runs (the first value of each axis is "
                                  "the baseline)")
    r.add_argument("--name", required=True)
    r.add_argument("--kb", required=True, help="the base knowledge base; other chunkings and encoders are built "
                                               "from its sources once")
    r.add_argument("--questions", default="default", help="question set name (default: default)")
    r.add_argument("--modes", type=lambda v: _csv_list(v, MODES), default=("rag",), help="default: rag")
    r.add_argument("--metrics", type=lambda v: _csv_list(v, METRICS), default=DEFAULT_METRICS,
                   help=f"comma-separated (default: {','.join(DEFAULT_METRICS)})")
    r.add_argument("--limit", type=int, help="only the first N questions")
    r.add_argument("--top-k", type=_axis("top_k"), metavar="K,K", help="e.g. 4,2,8 (default: the settings')")
    r.add_argument("--search-mode", type=_axis("search_mode"), metavar="MODE,MODE", help="of vector, fts, hybrid")
    r.add_argument("--chunk-size", type=_axis("chunk_tokens"), metavar="base,N",
                   help="chunk sizes in tokens; base = the knowledge base as it is")
    r.add_argument("--encoder", type=_axis("embedding_model"), metavar="base,PATH",
                   help="sentence-transformers model folders; base = the knowledge base's own encoder")
    r.add_argument("--answer-model", type=_axis("answer_model"), metavar="base,MODEL",
                   help="base, a .gguf file, a Run-page label, or a model name on the answer endpoint")
    r.add_argument("--max-configs", type=int, default=12, help="refuse a larger grid (default 12)")
    r.add_argument("--detach", action="store_true", help="execute in a background process and return at once")
    for name, text in (("resume", "execute what an experiment has not finished"),
                       ("cancel", "stop a running experiment after the items in flight")):
        x = xs.add_parser(name, help=text)
        x.add_argument("exp_id", metavar="EXP")
    x = xs.add_parser("show", help="an experiment's leaderboard against its baseline")
    x.add_argument("exp_id", metavar="EXP")
    x.add_argument("--baseline", type=int, default=1, metavar="N", help="the configuration compared with "
                                                                        "(default 1: each axis's first value)")
    x.add_argument("--mode", choices=MODES, help="the answers compared (default: rag)")
    x.add_argument("--json", action="store_true")
    x = xs.add_parser("list", help="list experiments")
    x.add_argument("--json", action="store_true")
    x = xs.add_parser("delete", help="delete an experiment (its runs are kept unless --runs)")
    x.add_argument("exp_id", metavar="EXP")
    x.add_argument("--runs", action="store_true", help="delete its runs with their answers and scores too")
    s.set_defaults(fn=cmd_experiment)

    s = sub.add_parser("kb", help="list knowledge bases and their sources")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_kb)

    s = sub.add_parser("judge", help="check how well the judge ranks answers of known quality")
    js = s.add_subparsers(dest="action", required=True)
    c = js.add_parser("check", help="score the calibration set with the configured judge; stored per judge")
    c.add_argument("--limit", type=int, help="only the first N calibration items")
    c.add_argument("--judge-model", help="another GGUF path (embedded) or model name (endpoint) for this check")
    c.add_argument("--force", action="store_true", help="run again even when this judge's check is stored")
    c.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_judge)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except RagEvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; `python -m core resume RUN_ID` finishes a run", file=sys.stderr)
        return 130
    except Exception as e:  # no traceback for users; RAGEVAL_DEBUG=1 shows it
        if os.environ.get("RAGEVAL_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set RAGEVAL_DEBUG=1 for details)", file=sys.stderr)
        return 1
