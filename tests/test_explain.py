"""Explanations a student can follow: every registered method has an objective that LaTeX accepts, its symbols and
the meaning of its loss; the "what you are seeing" captions change with the view and survive unknown methods."""
from __future__ import annotations

import pytest

from app.explain import HOW_IT_MOVES, seeing
from ddcore.methods import list_methods, method_class


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


BUILT_IN = [m for m in list_methods() if method_class(m).__module__.startswith("ddcore.methods.")]  # not test plugins


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_method_states_its_objective_symbols_and_loss(name: str) -> None:
    cls = method_class(name)
    assert cls.objective and _balanced(cls.objective) and "\\" in cls.objective, name
    assert cls.symbols and cls.symbols.count("$") % 2 == 0, name  # inline maths pairs up
    assert cls.loss_meaning.endswith("."), name
    assert cls.family in HOW_IT_MOVES, (name, cls.family)  # every family has its own sentence


def test_every_built_in_method_is_checked() -> None:
    assert {"dm", "dc", "dsa", "mtt", "frepo", "rfad", "kip_fc", "dd", "idc", "cafe", "idm", "random"} <= set(BUILT_IN)


def test_captions_change_with_the_view() -> None:
    dm = method_class("dm")
    grid = seeing("grid", dm, ipc=10, init="noise", iteration=120)
    assert grid.startswith("What you are seeing:") and "10 synthetic images at iteration 120" in grid
    assert "random noise" in grid and "average features" in grid
    assert "one network" not in grid
    one = seeing("grid", method_class("dc"), ipc=1, init="real")
    assert "its 1 synthetic image." in one and "randomly chosen real images" in one and "gradient" in one
    assert "nothing is synthesised" in seeing("grid", method_class("herding"), ipc=5, init="real")
    cls_view = seeing("class", dm, class_name="<b>7</b>")
    assert "<b>" not in cls_view and "7" in cls_view  # a class name is shown as text
    assert dm.loss_meaning in seeing("loss", dm)
    assert seeing("loss", None).startswith("What you are seeing: The quantity")  # an imported set
    with pytest.raises(ValueError):
        seeing("timelapse", dm)
