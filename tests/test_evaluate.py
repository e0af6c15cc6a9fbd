"""ddcore.evaluate: protocol values, records, learning, reproducibility, cancellation, refusal, real-data training."""
from __future__ import annotations

import json

import pytest
import torch

from ddcore.data import ImageSplit, LoadedDataset, load_dataset
from ddcore.data.info import DatasetInfo
from ddcore.evaluate import (
    EvalConfig,
    EvalResult,
    EvaluationCancelled,
    RealTraining,
    evaluate,
    get_preset,
    train_on_real,
)
from ddcore.synthetic import SetMeta, SyntheticSet

SMALL = {"width": 16, "depth": 2}  # a real ConvNet, narrow so tests stay fast


def toy_data(n_train: int = 40, n_test: int = 200, classes: int = 4, size: int = 16, seed: int = 0) -> LoadedDataset:
    """Perfectly separable: class c lights up quadrant c (plus noise)."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> ImageSplit:
        labels = torch.arange(n) % classes
        img = torch.rand(n, 1, size, size, generator=g) * 60
        h = size // 2
        for c in range(classes):
            r, q = divmod(c, 2)
            img[labels == c, :, r * h:(r + 1) * h, q * h:(q + 1) * h] += 180
        return ImageSplit(img.clamp(0, 255).to(torch.uint8), labels, classes)

    info = DatasetInfo("toy", "Toy", 1, size, classes, tuple(f"c{i}" for i in range(classes)), (0.3,), (0.3,))
    return LoadedDataset(info, split(n_train), split(n_test), "memory")


def toy_set(data: LoadedDataset, method: str = "random", shuffle_labels: bool = False,
            lr: float | None = None) -> SyntheticSet:
    x = data.normalize(data.train.images)
    y = data.train.labels.clone()
    if shuffle_labels:
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    meta = SetMeta.for_dataset(data.info, method, len(y) // data.info.num_classes)
    return SyntheticSet(x, y, meta, lr)


FAST = dict(epochs=15, test_limit=None, model_kwargs=SMALL, device="cpu")


def test_paper_preset_values_equal_the_reference():
    paper = get_preset("paper")
    dc = paper.resolve("cifar10", "convnet", "dc")  # refdc/utils.py evaluate_synset + main.py
    assert (dc.lr, dc.momentum, dc.weight_decay, dc.batch_size) == (0.01, 0.9, 5e-4, 256)
    assert (dc.epochs, dc.passes, dc.lr_decay_epoch, dc.lr_decay_factor) == (300, 301, 151, 0.1)
    assert dc.augmentation == "none" and dc.test_limit is None and paper.num_seeds == 5
    mnist = paper.resolve("mnist", "convnet", "random")  # get_daparam: MNIST -> crop_scale_rotate, 1000 epochs
    assert (mnist.augmentation, mnist.strategy, mnist.epochs, mnist.lr_decay_epoch) == \
        ("dc", "crop_scale_rotate", 1000, 501)
    assert paper.resolve("cifar10", "convnetbn", "dc").strategy == "crop_noise"
    for method in ("dsa", "dm", "mtt"):
        r = paper.resolve("cifar10", "convnet", method)
        assert (r.augmentation, r.strategy, r.epochs) == ("dsa", "color_crop_cutout_flip_scale_rotate", 1000)
    assert paper.resolve("mnist", "convnet", "dm").strategy == "color_crop_cutout_scale_rotate"
    learned = paper.resolve("cifar10", "convnet", "mtt", learned_lr=0.03)
    assert learned.lr == 0.03 and learned.lr_source == "learned"
    quick = get_preset("quick")
    assert quick.num_seeds < paper.num_seeds and quick.epochs_no_aug < paper.epochs_no_aug
    with pytest.raises(ValueError, match="preset"):
        get_preset("slow")
    with pytest.raises(ValueError, match="no field"):
        paper.with_(epoch=3)


def test_record_fields_and_json_round_trip(tmp_path):
    data = toy_data()
    seen: list[dict] = []
    r = evaluate(toy_set(data), "convnet", "quick", seeds=[3, 4], test_data=data, progress=seen.append, **FAST)
    assert r.seeds == [3, 4] and len(r.accuracies) == 2 and all(0 <= a <= 100 for a in r.accuracies)
    assert r.mean == pytest.approx(sum(r.accuracies) / 2) and r.std >= 0
    assert r.preset == "quick" and r.config["passes"] == 15 and r.config["lr"] == 0.01
    assert r.dataset == "toy" and r.architecture == "convnet" and r.num_images == 40 and r.ipc == 10
    assert r.device.startswith("cpu") and "torch" in r.versions and r.wall_time_s > 0
    # confusion counts summed over both seeds' networks; per-class accuracy is their mean
    assert r.test_images == 200 and sum(map(sum, r.confusion)) == 2 * 200 and len(r.per_class_accuracy) == 4
    assert r.class_stats_over == "all seeds"
    assert 100 * sum(r.confusion[c][c] for c in range(4)) / 400 == pytest.approx(r.mean, abs=1e-4)
    assert len(r.curves["epoch"]) == 15 and len(r.curves["loss_3"]) == 15
    assert seen and seen[-1]["stage"] == "test" and any(s.get("fraction") == 1.0 for s in seen)
    back = EvalResult.from_json(r.to_json())
    assert back == r
    assert EvalResult.load(r.save(tmp_path / "r.json")) == r
    json.loads(r.to_json())  # strict JSON (no NaN)


def test_separable_set_learns_and_random_labels_do_not():
    data = toy_data()
    good = evaluate(toy_set(data), "convnet", "quick", seeds=1, test_data=data, **FAST)
    bad = evaluate(toy_set(data, shuffle_labels=True), "convnet", "quick", seeds=1, test_data=data, **FAST)
    assert good.mean > 95
    assert bad.mean < 60


def test_tiny_real_subset_learns_and_is_reproducible():
    data = load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([data.train.sample_class(c, 3, g) for c in range(10)])
    pair = (data.normalize(data.train.images[idx]), data.train.labels[idx])
    kw = dict(dataset="mnist", epochs=20, test_limit=300, model_kwargs=SMALL, device="cpu", augmentation="none")
    a = evaluate(pair, "convnet", "quick", seeds=[0], **kw)
    b = evaluate(pair, "convnet", "quick", seeds=[0], **kw)
    assert a.mean > 40  # chance is 10
    assert a.accuracies == b.accuracies and a.set_id == b.set_id


def test_batched_seeds_equal_one_by_one():
    data = toy_data()
    s = toy_set(data)
    loop = evaluate(s, "convnet", "quick", seeds=[0, 1], test_data=data, batch_seeds="loop", **FAST)
    vmap = evaluate(s, "convnet", "quick", seeds=[0, 1], test_data=data, batch_seeds="vmap", **FAST)
    one = evaluate(s, "convnet", "quick", seeds=[1], test_data=data, **FAST)
    assert loop.accuracies == pytest.approx(vmap.accuracies, abs=1.1)
    assert loop.accuracies[1] == pytest.approx(one.accuracies[0], abs=1e-4)


def test_cancellation_raises_clearly():
    data = toy_data()
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(EvaluationCancelled, match="cancelled"):
        evaluate(toy_set(data), "convnet", "quick", seeds=1, test_data=data, should_stop=stop, **FAST)
    assert calls["n"] == 4


def test_soft_labels_and_learned_lr_are_accepted():
    data = toy_data()
    s = toy_set(data, method="mtt", lr=0.02)
    soft = torch.nn.functional.one_hot(s.labels, 4).float() * 3.0  # logits-like soft labels
    soft_set = SyntheticSet(s.images, soft, s.meta, s.lr)
    r = evaluate(soft_set, "convnet", "quick", seeds=1, test_data=data, augmentation="none", **FAST)
    assert r.config["lr"] == 0.02 and r.config["lr_source"] == "learned"
    assert r.mean > 90
    dsa = evaluate(s, "convnet", EvalConfig(name="mine", epochs=3, test_limit=None), seeds=1, test_data=data,
                   model_kwargs=SMALL, device="cpu", use_learned_lr=False)
    assert dsa.config["augmentation"] == "dsa" and dsa.config["lr"] == 0.01 and dsa.preset == "mine"


def test_mismatched_sets_are_refused():
    data = toy_data()
    s = toy_set(data)
    with pytest.raises(ValueError, match="shape"):
        evaluate((s.images[:, :, :8, :8], s.labels), dataset="toy", test_data=data, **FAST)
    with pytest.raises(ValueError, match="classes"):
        evaluate((s.images, torch.nn.functional.one_hot(s.labels, 5).float()), dataset="toy", test_data=data, **FAST)
    with pytest.raises(ValueError, match=r"labels range"):
        evaluate((s.images, s.labels + 3), dataset="toy", test_data=data, **FAST)
    with pytest.raises(ValueError, match="dataset="):
        evaluate((s.images, s.labels))
    with pytest.raises(ValueError, match="shape"):  # a CIFAR-shaped set for MNIST
        evaluate((torch.zeros(10, 3, 32, 32), torch.arange(10)), dataset="mnist", test_limit=10, epochs=1)


def test_training_on_real_is_computed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path))
    data = toy_data(n_train=80)
    plan = RealTraining("test", epochs=25)
    assert train_on_real("toy", "mlp", plan, device="cpu", data=data, compute=False) is None
    net, first = train_on_real("toy", "mlp", plan, device="cpu", data=data)
    assert first.method == "whole dataset" and first.mean > 80
    assert list((tmp_path / "reference").glob("*.json"))
    cached = train_on_real("toy", "mlp", plan, device="cpu", data=data, compute=False)
    assert cached is not None and cached[1] == first
    assert all(torch.equal(a, b) for a, b in zip(cached[0].state_dict().values(), net.state_dict().values()))


def test_custom_preset_names_resolve_in_any_process():
    from ddcore.evaluation.protocol import custom_preset_name, get_preset

    name = custom_preset_name(7, 300, "dsa", lr=1e-05, batch_size=64)
    cfg = get_preset(name)
    assert (cfg.name, cfg.epochs, cfg.test_limit, cfg.augmentation, cfg.lr, cfg.batch_size) == \
        (name, 7, 300, "dsa", 1e-05, 64)
    assert get_preset(custom_preset_name(3)).test_limit is None
    with pytest.raises(ValueError, match="custom preset name"):
        get_preset("custom-e3")
    with pytest.raises(ValueError, match="augmentation"):
        custom_preset_name(3, augmentation="mixup")


def test_warmup_cosine_schedule_matches_frepo_eval():
    """optax.join_schedules(linear 0 -> lr over 500 steps, cosine_decay(alpha=0.01)) as FRePo's script/eval.py."""
    from ddcore.evaluation.trainer import warmup_cosine_lr

    assert warmup_cosine_lr(3e-4, 0, 1000, 500, 0.01) == 0.0
    assert warmup_cosine_lr(3e-4, 250, 1000, 500, 0.01) == pytest.approx(1.5e-4)
    assert warmup_cosine_lr(3e-4, 500, 1000, 500, 0.01) == pytest.approx(3e-4)
    assert warmup_cosine_lr(3e-4, 750, 1000, 500, 0.01) == pytest.approx(3e-4 * (0.01 + 0.99 * 0.5))
    assert warmup_cosine_lr(3e-4, 1000, 1000, 500, 0.01) == pytest.approx(3e-6)
    assert warmup_cosine_lr(3e-4, 50, 100, 500, 0.01) == pytest.approx(3e-4)  # warm-up: at most half the steps


def test_a_method_is_evaluated_with_its_own_recipe_and_says_so():
    """FRePo's sets train as its eval.py trains them: Adam after a warm-up, on a ConvNet without normalisation;
    DM's with the DC reference's SGD on the instance-norm ConvNet; and either can be asked for explicitly."""
    data = toy_data()
    kw = {**FAST, "epochs": 60, "model_kwargs": {"width": 16, "depth": 2}}
    frepo = evaluate(toy_set(data, method="frepo"), "convnet", "quick", seeds=1, test_data=data,
                     augmentation="none", **kw)
    assert (frepo.config["optimizer"], frepo.config["convnet_norm"], frepo.model_kwargs["norm"]) == ("adam", "none",
                                                                                                       "none")
    assert frepo.config["lr"] == 1e-3 and frepo.config["weight_decay"] == 0.0  # quick: 1e-3 for its fewer steps
    assert get_preset("paper").resolve("cifar10", "convnet", "frepo").lr == 3e-4  # eval.py's
    lrs = frepo.curves["lr"]
    assert max(lrs) > lrs[0] and lrs[-1] < max(lrs) / 10  # warmed up, then decayed
    assert frepo.mean > 90
    dm = evaluate(toy_set(data, method="dm"), "convnet", "quick", seeds=1, test_data=data, augmentation="none", **kw)
    assert (dm.config["optimizer"], dm.config["convnet_norm"], dm.config["lr"]) == ("sgd", "", 0.01)
    assert "norm" not in dm.model_kwargs
    asked = evaluate(toy_set(data, method="frepo"), "convnet", "quick", seeds=1, test_data=data, augmentation="none",
                     optimizer="sgd", convnet_norm="own", **kw)
    assert (asked.config["optimizer"], asked.config["convnet_norm"], asked.config["lr"]) == ("sgd", "", 0.01)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        evaluate(toy_set(data), "convnet", "quick", seeds=1, test_data=data, optimizer="rmsprop", **kw)


def test_random_real_is_evaluated_in_a_zca_methods_pixel_space_when_asked():
    """DD-Ranking's same-protocol baseline for FRePo or MTT on CIFAR-10: random real whitened as their sets are.
    Asking a raw set into ZCA space equals evaluating its whitened copy; a whitened set is not whitened twice."""
    import dataclasses

    from ddcore.evaluation.protocol import trained_like
    from ddcore.zca import dataset_zca

    data = toy_data()
    raw = toy_set(data)
    whitened = SyntheticSet(dataset_zca(data).apply(raw.images), raw.labels,
                            dataclasses.replace(raw.meta, config={"zca": True}))
    kw = dict(seeds=1, test_data=data, augmentation="none", **FAST)
    asked = evaluate(raw, "convnet", "quick", zca_space=True, **kw)
    own = evaluate(whitened, "convnet", "quick", **kw)
    again = evaluate(whitened, "convnet", "quick", zca_space=True, **kw)
    plain = evaluate(raw, "convnet", "quick", **kw)
    assert (asked.config["extra"]["zca"], plain.config["extra"]["zca"]) == (True, False)
    assert asked.accuracies == pytest.approx(own.accuracies, abs=1e-6) == again.accuracies
    assert asked.curves["loss_0"] != plain.curves["loss_0"]  # the networks saw other pixels
    assert trained_like("frepo", "cifar10")["zca_space"] is True  # its README: ZCA except on the digit datasets
    assert "zca_space" not in trained_like("frepo", "mnist") and "zca_space" not in trained_like("frepo")
    assert trained_like("dc", "cifar10") == {}  # DC: random real's own protocol, raw pixels
    assert trained_like("mtt", "cifar10", "paper", ipc=10)["zca_space"] is True  # MTT's table: ZCA at IPC 1 and 10,
    assert "zca_space" not in trained_like("mtt", "cifar10", "paper", ipc=50)  # not at 50


def test_two_subsets_of_one_source_get_their_own_test_images() -> None:
    """The prepared test images are cached per test split: a second subset of the same source is not served the
    first one's (a cache keyed by the source alone did that, and a KRR or wide-network score used the wrong images)."""
    from ddcore.evaluation.api import test_tensors
    from tests.methodkit import tiny_mnist

    small, large = tiny_mnist(5, 3), tiny_mnist(5, 7)
    assert small.source == large.source
    cpu = torch.device("cpu")
    assert len(test_tensors(small, cpu)[1]) == 30 and len(test_tensors(large, cpu)[1]) == 70
    assert test_tensors(small, cpu)[0] is test_tensors(small, cpu)[0]  # still cached


@pytest.mark.parametrize("kwargs, says", [
    ({"architecture": ["convnet", "mlp"]}, "one model name"),
    ({"seeds": "12"}, "a number of networks or a list"),
    ({"seeds": 1.5}, "a number of networks or a list"),
    ({"seeds": [-1]}, "whole numbers from 0"),
    ({"seeds": 10**6}, "from 1 to 1,000"),
    ({"test_data": "mnist"}, "a loaded dataset"),
])
def test_the_api_names_a_bad_argument(kwargs, says) -> None:
    """Library callers get the argument named, not AttributeError: 'list' object has no attribute 'strip' (or, for
    seeds='12', networks trained with seeds 1 and 2)."""
    from ddcore.evaluation.krr import evaluate_krr

    data = load_dataset("mnist")
    with pytest.raises(ValueError, match=says):
        evaluate(toy_set(data), **{"architecture": "convnet", **kwargs})
    with pytest.raises(ValueError, match="reg is the ridge"):
        evaluate_krr(toy_set(data), reg=float("nan"), test_data=data)
