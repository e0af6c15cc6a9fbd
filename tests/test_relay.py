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
        return (("hold", True) in sent, True, 0, False)  # paused; once the hold is seen, stop (ends the wait)

    relay = RelayRecorder(report, every=0.25)
    relay.progress(3, 10, "iteration 3")  # the first report leaves at once
    assert sent == [("progress", 3, 10, "iteration 3")]
    relay.metrics({"iteration": 4, "loss": 1.0})
    relay.progress(4, 10, "iteration 4")
    relay.images("pixels", "labels", ("a",))
    assert len(sent) == 1  # waiting for the clock or a forced flush
    assert relay.wait_turn() is False  # held at iteration 4, then stopped
    hold = sent.index(("hold", True))
    assert [e[0] for e in sent[1:hold + 1]] == ["metrics", "progress", "images", "hold"], sent
    assert sent[2][1] == 4  # "paused" is read only with the iteration the worker holds at
    assert sent[-1] == ("hold", False)
