"""The documentation is generated: README.md and docs/*.md come from docs/templates/ with every number read from a
committed file (``python scripts/make_docs.py``). A committed page that differs from what the generator writes
fails here, as do a long README, a broken relative link, a machine path in a page, and wrong numbers from the
placeholders (checked against the report code's own pages, which format them independently)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from seqrec.experiments import docs
from seqrec.evaluation.report import portable_command, portable_text


def test_committed_pages_are_what_the_generator_writes():
    stale = docs.check_pages(ROOT)
    assert stale == [], f"run `python scripts/make_docs.py` and commit: {stale}"


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")
    assert len(lines) <= 300
    head = "\n".join(lines[:8])
    assert "bash scripts/main.sh --source ../shared/data/ml-1m" in head
    assert "bash scripts/test.sh" in head


def test_readme_keeps_the_public_commands_verbatim():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in (
        "python src/run_train.py --config-name=GPT_train data_path=data/ml-1m.csv task_name=ml1_GPT_train seqrec_module.lr=1e-3",
        "python src/run_predict.py --config-name=GPT_greedy task_name=ml1_GPT_greedy train_task=<TRAIN_ID>",
        "python src/run_predict.py --multirun --config-name=GPT_beam task_name=ml1_GPT_beam train_task=<TRAIN_ID> generation_params.num_beams=2,3",
        "python src/run_predict.py --config-name=GPT_temperature task_name=ml1_GPT_multisequence train_task=<TRAIN_ID> generation_params.temperature=0.3 generation_params.num_return_sequences=20",
        "source .venv/bin/activate",
    ):
        assert command in text


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_points_to_an_existing_file():
    broken = []
    for page in _pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if ROOT.resolve() not in path.parents and path != ROOT.resolve():
                continue  # beside the repository (../shared): not part of a clone
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_no_page_names_the_makers_machine():
    pages = _pages() + [ROOT / p for p in docs.RESULT_PAGES]
    found = [f"{p.relative_to(ROOT)}: {m}" for p in pages
             for m in re.findall(r"(?<![\w.<>/-])/(?:work|home|tmp|Users)/[\w./-]+", p.read_text(encoding="utf-8"))]
    assert found == []


def test_every_template_placeholder_is_filled():
    for page in _pages():
        assert "{{" not in page.read_text(encoding="utf-8"), page


# --------------------------------------------------------------------------- the placeholders' numbers


def test_numbers_match_the_report_codes_own_page():
    """The GPT-2 multi-sequence row of results/ml-1m: the report code wrote it into its README as
    `+0.0077 [+0.0055, +0.0098]` (its own formatting); the placeholder reads comparisons.csv."""
    src = docs.Sources(ROOT)
    where = "where=model:GPT;seed:pooled;family:multi;horizon:overall"
    diff = docs.render(f"{{{{diff results/ml-1m/comparisons.csv {where}}}}}", src)
    report = (ROOT / "results/ml-1m/README.md").read_text(encoding="utf-8")
    row = next(line for line in report.split("\n") if line.startswith("| GPT | overall |"))
    assert diff.replace("+.", "+0.").replace("-.", "-0.") in row
    assert diff == "+.0077 [+.0055, +.0098]"
    # mean ± sd over the three seeds, against pandas on the same file
    frame = pd.read_csv(ROOT / "results/ml-1m/summary.csv")
    top = frame[(frame["model"] == "GPT") & (frame["strategy"] == "topk")]["test_ndcg@10"]
    assert len(top) == 3
    text = docs.render("{{mean results/ml-1m/summary.csv where=model:GPT;strategy:topk col=test_ndcg@10}}", src)
    assert text == f"{top.mean():.4f} ± {top.std(ddof=1):.4f}".replace("0.", ".")
    assert f"| GPT | overall | {top.mean():.4f} ± {top.std(ddof=1):.4f}" in report


def test_value_formats_and_one_row_rule():
    src = docs.Sources(ROOT)
    assert docs._num(0.19687, ".4f") == ".1969"
    assert docs._num(-0.0357, "+.4f") == "-.0357"
    assert docs._num(1.5, ".1f") == "1.5"
    assert docs._num(3020, "int") == "3,020"
    assert docs._p(0.0005) == "< .001" and docs._p(0.293) == ".293"
    with pytest.raises(docs.UserError, match="3 rows match"):
        docs.render("{{value results/ml-1m/summary.csv where=model:GPT;strategy:topk col=test_ndcg@10}}", src)
    with pytest.raises(docs.UserError, match="no column"):
        docs.render("{{value results/ml-1m/summary.csv where=nope:1 col=x}}", src)
    with pytest.raises(docs.UserError, match="does not exist"):
        docs.render("{{table csv results/bench/none.csv}}", src)


def test_code_map_lists_every_layer_in_order():
    table = docs.code_map(ROOT)
    layers = [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)]
    packages = sorted(p.parent.name for p in (ROOT / "src/seqrec").glob("*/__init__.py"))
    assert layers == sorted(layers) and len(layers) == len(packages)
    for name in packages:
        assert f"[`{name}`](src/seqrec/{name}/)" in table


# --------------------------------------------------------------------------- portable commands


def test_portable_commands_and_prose():
    repo = str(ROOT.resolve())
    cmd = (f"python scripts/reproduce_paper.py --dataset ml-1m --source /work/shared/data/ml-1m --run-store "
           f"/elsewhere/store --results /x/y data_path={repo}/data/ml-1m.csv --jobs 2")
    assert portable_command(cmd) == ("python scripts/reproduce_paper.py --dataset ml-1m --source <data> --run-store "
                                     "<run-store> --results <results> data_path=data/ml-1m.csv --jobs 2")
    assert portable_command(f"python {repo}/src/run_predict.py train_task=abc  # a comment /x") == \
        "python src/run_predict.py train_task=abc  # a comment /x"
    assert portable_command("# report rebuilt with --report-only") == "# report rebuilt with --report-only"
    assert portable_text("the store `/work/runstores/ml1m-cpu`; see ../shared/PROTOCOL.md and 1/2") == \
        "the store `<run-store>`; see ../shared/PROTOCOL.md and 1/2"


# --------------------------------------------------------------------------- the main job's summary


def _predict_run(store, run_id, values, ms):
    run_dir = store.create(run_id, "predict", "t")
    users = np.arange(len(values["ndcg@10"]))
    frame = pd.DataFrame({"user_id": users, "part": "test", **values})
    frame.to_parquet(run_dir / "per_user.parquet")
    metrics = {f"test_{m}": float(np.mean(v)) for m, v in values.items()}
    metrics["test_ms_per_user"] = ms
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "intervals.json").write_text(json.dumps({"intervals": {
        f"test_{m}": [float(np.mean(v)) - 0.01, float(np.mean(v)) + 0.01] for m, v in values.items()
        if m in ("map@10", "ndcg@10", "recall@10", "recall@10_pos0")}}))
    store.update(run_id, hardware="CPU test")
    store.finish(run_id)


def test_main_summary_paired_difference_by_hand(tmp_path):
    """Multi-sequence scores every user exactly .02 more NDCG@10 than Top-K: the paired difference is .02 with a
    zero-width CI, sign-flip p at its floor, verdict ahead; recall@10 identical: 0, not separable."""
    from seqrec.tracking.run_store import RunStore

    store = RunStore(tmp_path / "runs")
    train_dir = store.create("train-1", "train", "t")
    (train_dir / "metrics.json").write_text(json.dumps({"epochs": 34, "best_epoch": 23, "fit_seconds": 380.0,
                                                        "seconds_per_epoch": 11.2, "best_val_next_ndcg@10": 0.17}))
    store.finish("train-1")
    rng = np.random.default_rng(0)
    n = 200
    base = {m: rng.uniform(0, 1, n) for m in ("map@10", "ndcg@10", "recall@10", "recall@10_pos0",
                                             *(f"recall@10_pos{p}" for p in range(1, 10)))}
    multi = dict(base)
    multi["ndcg@10"] = base["ndcg@10"] + 0.02
    _predict_run(store, "topk-1", base, 0.5)
    _predict_run(store, "multi-1", multi, 4.0)
    out = tmp_path / "summary.json"
    summary = docs.summarize_main_job(str(store.root), "train", "topk", "multi", out=out, n_resamples=2000)
    assert json.loads(out.read_text()) == summary
    d = summary["difference"]["ndcg@10"]
    assert d["diff"] == pytest.approx(0.02) and d["low"] == pytest.approx(0.02) and d["high"] == pytest.approx(0.02)
    assert d["p"] < 0.001 and d["verdict"] == "ahead" and d["users"] == n
    r = summary["difference"]["recall@10"]
    assert r["diff"] == 0 and r["verdict"] == "not separable"
    late = base_late = np.mean([base[f"recall@10_pos{p}"] for p in range(5, 10)], axis=0).mean()
    assert summary["topk"]["late"]["mean"] == pytest.approx(late)
    assert summary["topk"]["late"]["low"] < base_late < summary["topk"]["late"]["high"]
    assert summary["train"]["epochs"] == 34 and summary["multi"]["ms_per_user"] == 4.0
    text = docs.format_main_difference(summary)
    assert "+.0200 [+.0200, +.0200]" in text and text.endswith("(the gain is real on this run)")


def test_timing_table_sums_by_hand_and_reused_runs(tmp_path):
    """Seconds per model and stage from a hand-made timing.csv: reused runs left out by default, counted with
    ``reused=include`` (then two seeds: a seeds column and the total per seed)."""
    (tmp_path / "r").mkdir()
    pd.DataFrame([
        ("GPT", 42, "train", 100.0, True), ("GPT", 42, "rra", 10.0, True),
        ("GPT", 43, "train", 120.0, False), ("GPT", 43, "rra", 14.0, False),
        ("SASRec", 42, "train", 50.0, True), ("SASRec", 43, "train", 70.0, False),
    ], columns=["model", "seed", "stage", "seconds", "reused"]).to_csv(tmp_path / "r/timing.csv", index=False)
    src = docs.Sources(tmp_path)
    fresh = docs.render("{{table timing r}}", src).split("\n")
    assert fresh[0] == "| model | train | rra | total |"
    assert fresh[2:] == ["| GPT | 120 | 14 | 134 |", "| SASRec | 70 | 0 | 70 |", "| **total** | 190 | 14 | **204** |"]
    every = docs.render("{{table timing r reused=include}}", src).split("\n")
    assert every[0] == "| model | seeds | train | rra | total | per seed |"
    # GPT: 100 + 120 = 220 training, 10 + 14 = 24 RRA, 244 in all over 2 seeds; SASRec 50 + 70 = 120
    assert every[2:] == ["| GPT | 2 | 220 | 24 | 244 | 122 |", "| SASRec | 2 | 120 | 0 | 120 | 60 |",
                         "| **total** |  | 340 | 24 | **364** |  |"]
    with pytest.raises(docs.UserError, match="reused=maybe is not a choice"):
        docs.render("{{table timing r reused=maybe}}", src)
