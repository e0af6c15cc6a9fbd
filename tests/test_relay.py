"""The worker side of the relay: what a task reports reaches the submitter in the order it happened."""
from __future__ import annotations

import types

from ddcore.platform import relay as relay_module
from ddcore.platform.relay import RelayRecorder


def test_a_hold_arrives_after_the_progress_of_the_iteration_it_holds_at(monkeypatch) -> None:
    # A clock that stands still: after the first report only forced flushes leave, whatever the machine's speed
    monkeypatch.setattr(relay_module, "time", types.SimpleNamespace(monotonic=lambda: 1000.0, sleep=lambda s: None))
    sent: list[tuple] = []  # every event, in the order the submitter applies them

    def report(events: list[tuple]) -> tuple:
        sent.extend(events)
        return (("hold", True, 1) in sent, True, 0, False, 1)  # paused (its first pause); once held, stop (ends the wait)

    relay = RelayRecorder(report, every=0.25)
    relay.progress(3, 10, "iteration 3")  # the first report leaves at once
    assert sent == [("progress", 3, 10, "iteration 3")]
    relay.metrics({"iteration": 4, "loss": 1.0})
    relay.progress(4, 10, "iteration 4")
    relay.images("pixels", "labels", ("a",))
    assert len(sent) == 1  # waiting for the clock or a forced flush
    assert relay.wait_turn() is False  # held at iteration 4, then stopped
    hold = sent.index(("hold", True, 1))
    assert [e[0] for e in sent[1:hold + 1]] == ["metrics", "progress", "images", "hold"], sent
    assert sent[2][1] == 4  # "paused" is read only with the iteration the worker holds at
    assert sent[-1] == ("hold", False, 1)


def scripted(monkeypatch, controls: list[tuple]) -> tuple[RelayRecorder, list[tuple]]:
    """A relay that reports at every call (a clock a second on each time it is read) and whose submitter answers
    each report with the next control in `controls` (the last one repeats)."""
    ticks = iter(range(1000, 10**6))
    monkeypatch.setattr(relay_module, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks)), sleep=lambda s: None))
    sent: list[tuple] = []

    def report(events: list[tuple]) -> tuple:
        sent.extend(events)
        return controls.pop(0) if len(controls) > 1 else controls[0]

    return RelayRecorder(report, every=0.25), sent


HELD_1, RESUMED, HELD_2, STEP_2, STOP = ((False, True, 0, False, 1), (False, False, 0, False, 1), (False, True, 0, False, 2),
                                         (False, True, 1, False, 2), (True, True, 1, False, 2))


def test_a_pause_arriving_with_the_resume_is_not_read_as_a_step(monkeypatch) -> None:
    # Held for pause 1; Resume comes; the report that says "hold False" already brings pause 2. That turn runs (it was
    # resumed) without spending a single step, so the one step granted later runs one turn (it was swallowed before)
    relay, sent = scripted(monkeypatch, [HELD_1, HELD_1, RESUMED, HELD_2, HELD_2, HELD_2, STEP_2, STEP_2, STOP])
    assert [relay.wait_turn() for _ in range(3)] == [True, True, False]
    assert [e for e in sent if e[0] == "hold"] == [("hold", True, 1), ("hold", False, 1), ("hold", True, 2), ("hold", False, 2)]


def test_a_hold_is_announced_again_for_a_new_pause_and_after_the_tasks_own_report(monkeypatch) -> None:
    relay, sent = scripted(monkeypatch, [HELD_1, HELD_1, HELD_1, HELD_2, HELD_2, STOP])
    assert relay.wait_turn(before_hold=lambda: relay.progress(7, 10)) is False
    holds = [i for i, e in enumerate(sent) if e[0] == "hold"]
    assert [sent[i] for i in holds] == [("hold", True, 1), ("hold", True, 2), ("hold", False, 2)]
    assert sent[holds[0] - 1] == ("progress", 7, 10, "")  # where it holds, then that it holds (once)

def test_a_hold_answering_an_earlier_pause_does_not_make_the_job_held(tmp_path) -> None:
    from ddcore.platform.queue import Job

    job = Job("distill", None, "a job", "cpu", None, frozenset({"pause"}), None)
    job.started = True
    job.request(paused=True)
    relay_module.apply_event(("hold", True, 1), job, None, None, 1)
    assert job.holding and not job.snapshot().pausing
    job.request(paused=False)
    job.request(paused=True)  # pause 2, before the worker's "hold False" for pause 1 came through
    assert not job.holding and job.snapshot().pausing
    relay_module.apply_event(("hold", True, 1), job, None, None, 1)  # late: still about pause 1
    assert not job.holding and job.snapshot().pausing
    relay_module.apply_event(("hold", True, 2), job, None, None, 1)
    assert job.holding and not job.snapshot().pausing
