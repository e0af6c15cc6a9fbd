"""The benchmark board: DD-Ranking's scores from their definition (fractions, hand-checked), and a board built
from real stored evaluations (tiny sets and networks trained here), with the same-protocol baseline and ARS."""
from __future__ import annotations

import math

import pytest

from ddcore.board import augmentation_robust_score, board_table, build_board, label_robust_score, robust_score
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.results import collect, custom_preset
from tests.evalkit import evaluate_all, make_runs, store_result, stored_result


def test_scores_follow_the_papers_definition_with_fractions() -> None:
    # set 50 %, random 30 %, whole 80 %: IOR 0.2, HLR 0.3, 0.5*0.2 - 0.5*0.3 = -0.05
    expected = (math.exp(-0.05) - math.exp(-1)) / (math.e - math.exp(-1))
    assert label_robust_score(50, 30, 80) == pytest.approx(expected) == pytest.approx(0.24819, abs=1e-5)
    assert robust_score(1.0) == pytest.approx(1.0) and robust_score(-1.0) == pytest.approx(0.0)
    assert 0 <= label_robust_score(10, 90, 100) <= label_robust_score(95, 10, 99) <= 1
    # ARS: with augmentation 60 vs 40, without 50 vs 45: 0.5*0.2 + 0.5*0.05 = 0.125
    assert augmentation_robust_score(60, 40, 50, 45) == pytest.approx(robust_score(0.125))
    # the ddranking package's percentages in the exponent: exp(0.5*20 - 0.5*30) -> not a score in [0, 1]
    assert not 0 <= robust_score(0.5 * 20 - 0.5 * 30) <= 1


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    store = Store(root)
    runs = make_runs(store, methods=("dm", "dm"), ipc=1)  # two DM sets: the board pools their networks
    plain = custom_preset(epochs=3, test_limit=300, augmentation="none")
    augmented = custom_preset(epochs=3, test_limit=300, augmentation="dsa")
    manager = JobManager(store)
    try:
        subjects = [Subject.run(i) for i in runs] + [Subject.random("mnist", 1, 0)]
        evaluate_all(manager, subjects, ["convnet"], plain)
        evaluate_all(manager, subjects, ["convnet"], augmented)
        evaluate_all(manager, [Subject.run(runs[0])], ["mlp"], augmented)
    finally:
        manager.shutdown(wait=10)
    whole = stored_result(97.0, 0.2, [96.8, 97.2])  # training on all 60,000 images is hours here: a stored record
    store_result(store, Subject.whole("mnist"), whole, preset=augmented)
    return store, runs, plain, augmented


def test_the_board_pools_sets_and_compares_with_random_under_the_same_protocol(evaluated) -> None:
    store, runs, plain, augmented = evaluated
    rows = collect(store)
    board = build_board(rows, [], preset=augmented, cross_architectures=["mlp"], plain_preset=plain)
    assert len(board) == 1
    b = board[0]
    assert (b.dataset, b.method, b.ipc, b.augmentation) == ("mnist", "dm", 1, "dsa")
    mine = [r for r in rows if r.kind == "run" and r.preset == augmented and r.architecture == "convnet"]
    pooled = [a for r in mine for a in r.accuracies]
    assert b.ours.sets == 2 and b.ours.networks == len(pooled)
    assert b.ours.mean == pytest.approx(sum(pooled) / len(pooled))
    rand = next(r for r in rows if r.kind == "random" and r.preset == augmented)
    assert b.random_same is not None and b.random_same.mean == pytest.approx(rand.mean)  # same augmentation, epochs
    assert b.ior == pytest.approx(b.ours.mean - rand.mean) and b.hlr == pytest.approx(97.0 - b.ours.mean)
    assert b.lrs == pytest.approx(label_robust_score(b.ours.mean, rand.mean, 97.0))
    plain_set = [a for r in rows if r.kind == "run" and r.preset == plain for a in r.accuracies]
    plain_rand = next(r for r in rows if r.kind == "random" and r.preset == plain)
    assert b.ars == pytest.approx(augmentation_robust_score(b.ours.mean, rand.mean, sum(plain_set) / len(plain_set),
                                                            plain_rand.mean))
    assert set(b.cross) == {"mlp"} and b.cross["mlp"].sets == 1
    table = board_table(board)
    assert table[0]["on mlp"] == b.cross["mlp"].label() and table[0]["lrs"] == round(b.lrs, 3)


def test_a_random_baseline_under_another_protocol_is_not_called_fair(evaluated) -> None:
    store, runs, plain, augmented = evaluated
    rows = [r for r in collect(store) if not (r.kind == "random" and r.preset == augmented)]
    b = build_board(rows, [], preset=augmented)[0]
    assert b.random_same is None and b.random_preset is None  # only the no-augmentation baseline is stored
    assert b.sigma_above_random is None and b.lrs is None
    one = build_board(collect(store), [], preset=plain)[0]  # the baseline was trained once: no σ to speak of
    assert one.random_same is not None and one.random_same.networks == 1 and one.sigma_above_random is None


def test_random_real_trained_like_another_method_is_not_pooled_into_its_own_protocol(evaluated) -> None:
    """The Evaluate page's 'trained like FRePo' baseline keeps its own row: random real's own-protocol column, the
    published comparison and the accuracy-vs-IPC line go on using random real's own runs."""
    import copy
    import dataclasses

    from ddcore.results import compare_published, to_row

    store, runs, plain, augmented = evaluated
    rows = collect(store)
    own = next(r for r in rows if r.kind == "random" and r.preset == augmented)
    liked = copy.deepcopy(own.evaluation.result)
    liked.config.update(optimizer="adam", convnet_norm="none", augmentation="dsa")
    liked.mean, liked.accuracies = own.mean - 30, [a - 30 for a in own.accuracies]
    rows = rows + [to_row(dataclasses.replace(own.evaluation, key="liked-frepo", result=liked,
                                              created=own.evaluation.created + 1), {})]
    whitened = copy.deepcopy(liked)  # ... and trained in ZCA space, as FRePo's CIFAR-10 sets are
    whitened.config["extra"] = {**whitened.config.get("extra", {}), "zca": True}
    rows = rows + [to_row(dataclasses.replace(own.evaluation, key="liked-frepo-zca", result=whitened,
                                              created=own.evaluation.created + 2), {})]
    trained_like = [r for r in rows if r.recipe]
    assert [r.label for r in trained_like] == ["random real · IPC 1 · Adam, no norm",
                                               "random real · IPC 1 · Adam, no norm, ZCA"]
    assert trained_like[0].subject != own.subject  # its own group: both stay in the results
    assert len({r.subject for r in trained_like}) == 2
    from ddcore.board import _protocol

    assert _protocol(trained_like[0]) != _protocol(trained_like[1])  # a raw-pixel set is not matched to a ZCA one
    b = build_board(rows, [], preset=augmented)[0]
    assert b.random_preset.mean == pytest.approx(own.mean)  # not pooled with the Adam-trained one
    published = [{"dataset": "mnist", "method": "random", "ipc": 1, "architecture": "convnet", "mean": 60.0,
                  "std": 1.0, "source": "test", "uncertain": False}]
    assert compare_published(rows, published)[0]["ours_mean"] == pytest.approx(round(own.mean, 2))
