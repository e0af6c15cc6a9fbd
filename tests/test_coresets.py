"""Coreset baselines as methods: real images of the right classes, IPC per class, deterministic per seed."""
from __future__ import annotations

import pytest
import torch

from ddcore.data import load_dataset
from ddcore.methods import create_method, list_methods, make_config
from ddcore.methods.selection import herding_order, kcenter_order

FAST = {"embedding": "random", "pool_per_class": 40}


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def run(name: str, data, ipc: int = 3, seed: int = 0, **overrides):
    kw = {} if name == "random" else {**FAST, **overrides}
    m = create_method(name, data, ipc, preset="quick", seed=seed, **kw)
    assert m.total_iterations == 1 and not m.done
    metrics = m.step()
    assert m.done and "loss" in metrics and metrics["selected"] == ipc * data.info.num_classes
    return m, m.synthetic()


@pytest.mark.parametrize("name", ["random", "herding", "kcenter"])
def test_coreset_picks_real_images_of_the_right_classes(mnist, name):
    assert name in list_methods()
    m, s = run(name, mnist, ipc=3)
    idx = torch.tensor(s.meta.config["indices"])
    assert len(s) == 30 and len(set(idx.tolist())) == 30
    assert torch.bincount(s.labels, minlength=10).tolist() == [3] * 10  # exactly IPC per class
    assert torch.equal(s.labels, mnist.train.labels[idx])  # each image keeps its own class
    assert torch.allclose(s.images, mnist.normalize(mnist.train.images[idx]))  # unchanged real images
    assert s.meta.method == name and s.meta.ipc == 3


def test_feature_coresets_are_deterministic_and_differ_from_random(mnist):
    _, h1 = run("herding", mnist, seed=0)
    _, h2 = run("herding", mnist, seed=0)
    _, k1 = run("kcenter", mnist, seed=0)
    _, k2 = run("kcenter", mnist, seed=0)
    _, k3 = run("kcenter", mnist, seed=1, first_center="random")
    _, r0 = run("random", mnist, seed=0)
    _, r1 = run("random", mnist, seed=1)
    ind = lambda s: s.meta.config["indices"]  # noqa: E731
    assert ind(h1) == ind(h2) and ind(k1) == ind(k2)
    assert ind(k1) != ind(k3)  # a random first center changes k-center's choice
    _, h_one = run("herding", mnist, ipc=1)
    _, k_one = run("kcenter", mnist, ipc=1)
    assert ind(h_one) == ind(k_one)  # both start at the image nearest the class mean (DC Table 1: equal at IPC 1)
    assert ind(r0) != ind(r1)
    assert ind(h1) != ind(r0) and ind(k1) != ind(r0) and ind(h1) != ind(k1)


def test_herding_tracks_the_mean_and_kcenter_covers():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(200, 5, generator=g)
    order = herding_order(feats, 10)
    rand = torch.randperm(200, generator=g)[:10]
    gap = lambda ix: float(((feats.mean(0) - feats[ix].mean(0)) ** 2).sum())  # noqa: E731
    assert len(set(order)) == 10 and gap(order) < gap(rand)
    centers = kcenter_order(feats, 10, first=0)
    radius = lambda ix: float(torch.cdist(feats, feats[ix]).min(1).values.max())  # noqa: E731
    assert centers[0] == 0 and len(set(centers)) == 10 and radius(centers) < radius(rand)


def test_trained_embedding_is_an_artefact_and_presets(mnist, tmp_path, monkeypatch):
    """The trained feature network is an artefact: required by the method, made once, then reused."""
    from ddcore.methods import MissingArtefactsError, method_class
    from ddcore.platform.store import Store
    from ddcore.tasks import resolve_artefacts

    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path))
    assert make_config("herding", mnist.info, 10, "paper").pool_per_class is None
    assert make_config("herding", mnist.info, 10, "quick").embed_per_class == 200
    trained = dict(embedding="trained", embed_epochs=1, embed_per_class=10, pool_per_class=20,
                   embed_architecture="convnetw32")
    config = make_config("herding", mnist.info, 2, "quick", **trained)
    needed = method_class("herding").requires(mnist.info, 2, config, "convnet")
    assert [(r.kind, dict(r.params)["epochs"], dict(r.params)["per_class"]) for r in needed] == [
        ("trained-network", 1, 10)]
    with pytest.raises(MissingArtefactsError):
        create_method("herding", mnist, 2, config=config)
    store = Store(tmp_path / "home")
    artefacts = resolve_artefacts(needed, store, "cpu", mnist)
    assert [a.kind for a in store.list_artefacts()] == ["trained-network"]
    m = create_method("herding", mnist, 2, config=config, artefacts=artefacts)
    m.step()
    assert len(m.synthetic()) == 20
    again = resolve_artefacts(needed, store, "cpu", mnist)  # stored: loaded, not trained again
    assert len(store.list_artefacts()) == 1
    assert all(torch.equal(a, b) for a, b in zip(again["trained-network"].state_dict().values(),
                                                  artefacts["trained-network"].state_dict().values()))
    assert method_class("herding").requires(mnist.info, 2, make_config("herding", mnist.info, 2, "quick",
                                                                       embedding="random"), "convnet") == ()
    with pytest.raises(ValueError, match="no setting"):
        make_config("kcenter", mnist.info, 1, "quick", radius=3)


def test_state_dict_round_trip(mnist):
    m, s = run("kcenter", mnist, ipc=1)
    fresh = create_method("kcenter", mnist, 1, preset="quick", seed=0, **FAST)
    fresh.load_state_dict(m.state_dict())
    assert fresh.done and fresh.synthetic().meta.config["indices"] == s.meta.config["indices"]
