"""Shared UI pieces as a new user meets them: accuracies of a single network, and the sidebar's
'Jobs on this server' after Start, Cancel, Rename and Delete (AppTest, each test in a home of its own)."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

import tests.tiny_method  # noqa: F401  (registers 'tinypull')
from app.widgets import fmt_accuracy, seed_count
from ddcore.jobs import EvalSpec
from ddcore.runner import RunSpec
from ddcore.store import RunStore
from tests.conftest import ROOT


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home of this test's own; the pages' job manager (app/state.py, keyed by home) is shut down after."""
    root = tmp_path / "ddhome"
    root.mkdir()
    monkeypatch.setenv("DDCORE_HOME", str(root))
    yield root
    from app.state import _manager_for

    _manager_for(str(root)).shutdown(wait=60)


def page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def sidebar_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption])


def main_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.main.markdown] + [c.value for c in at.main.caption]
                     + [str(m.value) for m in at.main.metric])


def one_run(store: RunStore, ipc: int = 2, seed: int = 0) -> str:
    """A finished tinypull run, made by the pages' own job manager (so its job is on 'this server')."""
    from app.state import job_manager

    manager = job_manager()
    job = manager.submit_distill(RunSpec(dataset="mnist", method="tinypull", ipc=ipc, seed=seed,
                                         overrides={"iterations": 3}, device="cpu"), evaluate_after=False)
    return manager.wait(job.id, 120).run_id


ONE_NETWORK = {"mean": 0.905, "std": 0.0, "accuracies": [0.905], "seeds": [0]}


def save_eval(store: RunStore, run_id: str, record: dict, ipc: int = 2) -> EvalSpec:
    spec = EvalSpec.for_run(run_id, architecture="convnet")
    store.save_evaluation(spec.key(), record, subject=spec.subject, run_id=run_id, dataset="mnist", ipc=ipc,
                          architecture="convnet", preset=spec.preset)
    return spec


# ---------------------------------------------------------------------------------------------- one network
def test_fmt_accuracy_says_one_network_instead_of_a_zero_spread() -> None:
    assert fmt_accuracy(None) == "—"
    assert fmt_accuracy(61.5) == "61.5 %"
    assert fmt_accuracy(61.5, 1.2) == "61.5 ± 1.2 %"  # the old two-argument call is unchanged
    assert fmt_accuracy(61.5, 1.2, 3) == "61.5 ± 1.2 %"
    assert fmt_accuracy(90.5, 0.0, n_seeds=1) == "90.5 % (one network)"
    assert fmt_accuracy(90.5, None, 1) == "90.5 % (one network)"
    assert seed_count({"accuracies": [0.9]}) == 1
    assert seed_count({"mean": 0.9, "seeds": [0, 1, 2]}) == 3
    assert seed_count({"mean": 0.9, "std": 0.01}) is None  # a record that does not say
    assert seed_count(None) is None


def test_pages_show_one_network_not_plus_minus_zero(home) -> None:
    store = RunStore(home)
    a, b = one_run(store, seed=0), one_run(store, seed=1)
    save_eval(store, a, ONE_NETWORK)
    save_eval(store, b, {"mean": 0.8, "std": 0.015, "accuracies": [0.79, 0.81], "seeds": [0, 1]})

    at = ok(page("compare.py", runs=f"{a},{b}").run())
    values = [m.value for m in at.metric]
    assert "90.5 %" in values and "80.0 ± 1.5 %" in values, values
    assert "one network" in main_text(at) and "± 0.0" not in main_text(at)

    at = ok(page("gallery.py", run=a).run())
    table = at.dataframe[0].value
    assert list(table["accuracy"]) == ["90.5 % (one network)"]

    at = page("distill.py", run=a)
    at.session_state["distill_run"] = a
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["This set"] == "90.5 %"
    assert "one network" in main_text(at) and "± 0.0" not in main_text(at)

    at = ok(page("evaluate.py").run())
    details = []
    for option in at.selectbox(key="eval_detail_mnist").options:  # "One evaluation in detail", each in turn
        at.selectbox(key="eval_detail_mnist").set_value(option)
        ok(at.run())
        details.append(next(m.value for m in at.markdown if m.value.startswith("**") and " preset · " in m.value))
    assert len(details) == 2 and not any("± 0.0" in d for d in details), details
    assert any(d.startswith("**90.5 % (one network)**") for d in details), details
    assert any(d.startswith("**80.0 ± 1.5 %** over 2 seed(s)") for d in details), details


# ---------------------------------------------------------------------------------------------- jobs panel
def test_jobs_panel_shows_the_current_run_name_and_deleted_runs(home) -> None:
    from app.state import job_manager

    store = RunStore(home)
    run_id = one_run(store)
    old = store.get_run(run_id).name
    spec = save_eval(store, run_id, ONE_NETWORK)
    job_manager().submit_evaluation(spec)  # reused from the store: done at once, named after the run
    at = ok(page("distill.py").run())
    assert old in sidebar_text(at)

    store.rename_run(run_id, "Pulled digits")  # what the Gallery's Rename does
    ok(at.run())
    text = sidebar_text(at)
    assert "**Pulled digits**" in text and "Evaluate Pulled digits on convnet" in text, text
    assert old not in text

    store.delete_run(run_id)  # what the Gallery's Delete does
    at = ok(page("evaluate.py").run())
    text = sidebar_text(at)
    assert "(run deleted)" in text and "Pulled digits" not in text, text


def test_evaluate_sidebar_lists_a_started_job_and_its_cancellation(home) -> None:
    """Started on the Evaluate page: the sidebar lists it in the same run (it used to be drawn before the
    button was handled, and stayed 'No jobs yet' until a reload); Cancel redraws it."""
    from app.state import job_manager

    # The paper preset takes minutes on a CPU: long enough to cancel it from the page.
    at = page("evaluate.py")
    at.session_state["eval_preset"] = "paper"
    ok(at.run())
    at.button(key="eval_start").click()
    ok(at.run())
    text = sidebar_text(at)
    assert "Evaluate random real · mnist · IPC 1 on convnet (paper)" in text, text
    assert "queued" in text or "running" in text, text
    cancel = [b for b in at.button if (b.key or "").startswith("eval_cancel_")]
    assert len(cancel) == 1
    job_id = cancel[0].key.removeprefix("eval_cancel_")
    cancel[0].click()
    ok(at.run())
    assert job_manager().wait(job_id, 120).status == "cancelled"
    deadline = time.monotonic() + 30
    while "evaluate · cancelled" not in sidebar_text(at):
        assert time.monotonic() < deadline, sidebar_text(at)
        time.sleep(0.3)
        ok(at.run())
