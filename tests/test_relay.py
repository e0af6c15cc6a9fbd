"""The worker side of the relay: what a task reports reaches the submitter in the order it happened."""
from __future__ import annotations

from ddcore.platform.relay import RelayRecorder


def test_a_hold_arrives_after_the_progress_of_the_iteration_it_holds_at() -> None:
    sent: list[tuple] = []  # every event, in the order the submitter applies them

    def report(events: list[tuple]) -> tuple:
        sent.extend(events)
        return (("hold", True) in sent, True, 0, False)  # paused; once the hold is seen, stop (ends the wait)

    relay = RelayRecorder(report, every=0.05)
    relay.progress(3, 10, "iteration 3")  # the first report leaves at once
    relay.metrics({"iteration": 4, "loss": 1.0})
    relay.progress(4, 10, "iteration 4")
    relay.images("pixels", "labels", ("a",))
    assert relay.wait_turn() is False  # held at iteration 4, then stopped
    hold = sent.index(("hold", True))
    before = [e for e in sent[:hold] if e[0] == "progress"]
    assert before and before[-1][1] == 4, sent  # "paused" is read only with the iteration the worker holds at
    assert {e[0] for e in sent[:hold]} >= {"metrics", "images"}, sent
    assert sent[-1] == ("hold", False)
