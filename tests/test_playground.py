"""The 2-D playground: toy datasets through the normal dataset contract, registered methods distilling them, the
boundary networks, and the page's controls (AppTest). The browser test is in test_browser_live.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddcore.data import available_datasets, get_dataset_info, load_dataset, point_datasets
from ddcore.data.points import EXTENT, GENERATORS, plane_from_unit
from ddcore.methods import DivergenceError
from ddcore.platform.bridge import Studio
from ddcore.playground import PLAYGROUND_METHODS, Playground, PlaygroundSpec, requirements
from tests.apptest_kit import ok, page


def test_toys_are_datasets_of_2_channel_1x1_images_and_not_offered_as_images() -> None:
    assert point_datasets() == sorted(f"points-{k}" for k in GENERATORS)
    assert not set(point_datasets()) & set(available_datasets())  # the image pages never list them
    for name in point_datasets():
        data = load_dataset(name)
        info = data.info
        assert info.shape == (2, 1, 1) and 2 <= info.num_classes <= 5 and info.extra["points"]
        assert data.train.images.dtype == torch.uint8 and len(data.train) >= 300 and len(data.test) >= 100
        assert min(data.train.class_counts()) >= 100
        again = load_dataset(name)
        assert torch.equal(again.train.images, data.train.images)  # generated, the same every time
        x, _ = data.normalized_split("train")
        assert abs(float(x.mean())) < 0.05 and 0.9 < float(x.std()) < 1.1  # normalised like images


def test_stored_coordinates_map_back_to_the_plane() -> None:
    data = load_dataset("points-circles")
    xy = plane_from_unit(data.train.images.float().numpy().reshape(-1, 2) / 255.0)
    radius = np.hypot(xy[:, 0], xy[:, 1])
    labels = data.train.labels.numpy()
    assert np.all(np.abs(xy) <= EXTENT)
    assert radius[labels == 0].mean() > 1.8 > 1.3 > radius[labels == 1].mean()  # outer ring, inner disc


def test_bad_playground_specs_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="points-moons"):
        PlaygroundSpec(dataset="mnist")
    with pytest.raises(ValueError, match="dm"):
        PlaygroundSpec(method="kip")
    with pytest.raises(ValueError, match="between 1 and 50"):
        PlaygroundSpec(ipc=0)
    with pytest.raises(ValueError, match="learning rate"):
        PlaygroundSpec(lr=-1)


@pytest.mark.parametrize("method", ["dm", "dc"])
def test_a_few_synthetic_points_teach_the_boundary(method: str) -> None:
    """From noise, 300 steps on the moons: the network trained on the 3 points per class beats the one on the
    starting points by a wide margin, and the all-points network is near perfect."""
    torch.manual_seed(0)
    pg = Playground(PlaygroundSpec(dataset="points-moons", method=method, ipc=3))
    start = pg.frame()
    assert start.synthetic_xy.shape == (6, 2) and start.synthetic_probs.shape[-1] == 2
    assert start.full_accuracy > 95
    for _ in range(300):
        pg.step()
    end = pg.frame()
    assert end.iteration == 300 and len(end.losses) == 300
    assert end.synthetic_accuracy > max(80.0, start.synthetic_accuracy + 15), (start.synthetic_accuracy,
                                                                                end.synthetic_accuracy)
    assert not np.allclose(end.synthetic_xy, start.synthetic_xy)
    np.testing.assert_allclose(end.synthetic_probs.sum(-1), 1.0, atol=1e-5)


def test_mtt_on_points_makes_its_experts_once_through_the_studio(tmp_path) -> None:
    spec = PlaygroundSpec(dataset="points-blobs", method="mtt", ipc=2)
    assert [r.kind for r in requirements(spec)] == ["expert-trajectories"]
    studio = Studio(tmp_path)
    try:
        pg = studio.playground(spec)
        pg.advance(budget_s=0.2)
        assert pg.iteration >= 1
        stored = [a.key for a, _ in studio.artefacts()]
        assert len(stored) == 1
        again = studio.playground(spec)  # the experts are reused, not trained again
        assert again.iteration == 0 and [a.key for a, _ in studio.artefacts()] == stored
    finally:
        studio.close()


def test_a_learning_rate_that_explodes_says_so() -> None:
    pg = Playground(PlaygroundSpec(dataset="points-spirals", method="dm", ipc=2, lr=1e4))
    with pytest.raises(DivergenceError):
        for _ in range(200):
            pg.step()


def test_every_playground_method_runs_on_every_toy() -> None:
    for name in point_datasets():
        for method in PLAYGROUND_METHODS:
            if method == "mtt":
                continue  # needs its experts (the test above)
            pg = Playground(PlaygroundSpec(dataset=name, method=method, ipc=2))
            pg.advance(budget_s=0.0)
            frame = pg.frame()
            assert frame.iteration == 1 and np.isfinite(frame.synthetic_xy).all(), (name, method)
            assert get_dataset_info(name).num_classes == frame.synthetic_probs.shape[-1]


# ---------------------------------------------------------------------- the page
def test_playground_page_controls_the_url_and_steps() -> None:
    at = ok(page("playground.py", dataset="spirals", method="dc", ppc="4", lr="0.05", seed="3").run())
    assert at.selectbox(key="pg_dataset").value == "spirals"
    assert at.selectbox(key="pg_method").value == "dc"
    assert at.slider(key="pg_ipc").value == 4 and at.session_state["pg_lr"] == 0.05
    assert not at.error
    labels = [b.label for b in at.button]
    assert any("Play" in b for b in labels) and any("Step" in b for b in labels) and any("Reset" in b for b in labels)
    assert "Iteration **0**" in " ".join(m.value for m in at.markdown)
    at.button(key="pg_step_btn").click()
    ok(at.run())
    assert "Iteration **1**" in " ".join(m.value for m in at.markdown)
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("12 synthetic points" in c for c in captions) and any("all 1,200 points" in c for c in captions)
    at.button(key="pg_reset").click()
    ok(at.run())
    assert "Iteration **0**" in " ".join(m.value for m in at.markdown)
    # Another method starts from its own learning rate, and the URL follows every choice.
    at.selectbox(key="pg_method").set_value("dm")
    ok(at.run())
    assert at.session_state["pg_lr"] == 0.5 and at.query_params["method"] in ("dm", ["dm"])
    assert at.query_params["ppc"] in ("4", ["4"]) and at.query_params["seed"] in ("3", ["3"])


def test_playground_page_bad_link_values_fall_back_with_a_warning() -> None:
    at = ok(page("playground.py", dataset="mnist", method="<b>x</b>", ppc="999").run())
    assert at.selectbox(key="pg_dataset").value == "moons" and at.slider(key="pg_ipc").value == 3
    assert len(at.warning) == 3


def test_dms_live_preset_narrows_only_networks_that_take_a_width() -> None:
    """The live preset's half-width ConvNet; on an architecture without a width (ResNet, MLP) it runs as it is."""
    from ddcore.methods import create_method
    from tests.methodkit import tiny_mnist

    data = tiny_mnist()
    conv = create_method("dm", data, 1, preset="live")
    conv.step()
    assert conv.network(conv.rng(2)).features[0].out_channels == 64  # width 64, not the default 128
    mlp = create_method("dm", data, 1, preset="live", architecture="mlp")
    mlp.step()  # no 'width' passed to the MLP
    assert mlp.iteration == 1
