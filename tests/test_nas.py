"""Architecture-search proxy (ddcore/nas.py, ddcore/tasks/nas.py): rank correlations on known rankings, the grid,
and the reuse of the whole-data accuracies, on tiny sizes with real data and real networks."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tests.tiny_method  # noqa: F401  (registers 'tinypull')
from ddcore.nas import GRIDS, Grid, bootstrap_interval, correlations, kendall, spearman
from ddcore.platform.bridge import DistillSpec, NasSpec, Studio

TINY_GRID = dict(widths=(8, 16), depths=(1,), norms=("instancenorm", "none"), activations=("relu",), poolings=("avgpooling",))


def test_rank_correlation_on_known_rankings() -> None:
    a = [50.0, 60.0, 70.0, 80.0, 90.0]
    assert spearman(a, a) == pytest.approx(1.0) and kendall(a, a) == pytest.approx(1.0)
    assert spearman(a, a[::-1]) == pytest.approx(-1.0) and kendall(a, a[::-1]) == pytest.approx(-1.0)
    assert spearman(a, [x ** 3 for x in a]) == pytest.approx(1.0)  # ranks only, not values
    assert kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    assert np.isnan(spearman(a, [1.0] * 5))  # a constant vector has no ranking
    assert bootstrap_interval(a, a, "spearman", reps=200) == pytest.approx((1.0, 1.0))
    lo, hi = bootstrap_interval(a, a[::-1], "kendall", reps=200)
    assert lo == pytest.approx(-1.0) and hi == pytest.approx(-1.0)


def test_the_bootstrap_statistics_equal_scipys_resample_by_resample() -> None:
    """The bootstrap computes every resample at once (ddcore/nas.py `_row_statistics`); each must equal scipy's
    spearmanr and kendalltau (tau-b) on that resample, ties and constant resamples (NaN) included."""
    from ddcore.nas import _row_statistics, _statistic

    rng = np.random.default_rng(3)
    a = np.round(rng.normal(60, 10, 9))  # rounded: the resamples repeat values, as a bootstrap's do
    b = a + np.round(rng.normal(0, 8, 9))
    rows = rng.integers(0, 9, size=(300, 9))
    rows[0] = 4  # one resample of a single architecture: constant, no ranking
    for kind in ("spearman", "kendall"):
        fast = _row_statistics(kind, a[rows], b[rows], chunk_cells=500)  # several chunks
        slow = np.array([_statistic(kind, a[r], b[r]) for r in rows])
        assert np.isnan(fast[0]) and np.array_equal(np.isnan(fast), np.isnan(slow))
        assert np.allclose(fast[~np.isnan(slow)], slow[~np.isnan(slow)], atol=1e-12), kind


def test_correlations_over_all_and_the_top_k() -> None:
    whole = [90, 80, 70, 60, 50, 40]
    proxy = [10, 20, 30, 60, 50, 40]  # top 3 on whole data are ranked backwards, the rest forwards
    rows = {c.subset: c for c in correlations("p", proxy, whole, top_ks=(3, 6, 10), reps=100)}
    assert set(rows) == {"all", "top 3"}  # a k as large as the grid is 'all'
    assert rows["top 3"].n == 3 and rows["top 3"].spearman == pytest.approx(-1.0)
    assert rows["all"].n == 6 and rows["all"].spearman_low <= rows["all"].spearman <= rows["all"].spearman_high


def test_the_grid_enumerates_what_it_claims() -> None:
    g = Grid(**TINY_GRID)
    archs = g.architectures()
    assert len(archs) == len(g) == 4 and len({a.name for a in archs}) == 4
    assert {(a.width, a.norm) for a in archs} == set(itertools.product((8, 16), ("instancenorm", "none")))
    dc = GRIDS["dc720"]
    assert len(dc) == 720 == len(dc.architectures()) == len(set(dc.architectures()))
    assert {a.depth for a in dc.architectures()} == {1, 2, 3, 4} and {a.pooling for a in dc.architectures()} == {
        "none", "maxpooling", "avgpooling"}
    assert len(GRIDS["quick"]) >= 12
    with pytest.raises(ValueError, match="unknown norm"):
        Grid(norms=("weird",))
    with pytest.raises(ValueError, match="twice"):
        Grid(widths=(8, 8))


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    s = Studio(tmp_path_factory.mktemp("nas-home"))
    yield s
    s.manager.shutdown(wait=30)


def _spec(**changes) -> NasSpec:
    return NasSpec(**{"dataset": "mnist", "proxies": ("random",), "ipc": 2, **TINY_GRID, "budget": "tiny",
                      "bootstrap": 100, "device": "cpu", **changes})


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_a_study_reuses_the_whole_data_accuracies(studio) -> None:
    first = studio.manager.wait(studio.submit(_spec()).id, 240)
    assert first.status == "done", first.message
    r = first.result
    assert r.proxy_accuracy.shape == (1, 4) and r.whole_accuracy.shape == (4,)
    assert {c["subset"] for c in r.correlations} == {"all"} and r.architectures == [a.name for a in Grid(**TINY_GRID).architectures()]
    assert r.time_saved(0) > 0
    whole_jobs = len(studio.jobs(kind="nas-whole"))
    # a stored set as a second proxy: another study, same grid and budget -> the whole-data accuracies are reused
    run = studio.manager.wait(studio.submit(DistillSpec("mnist", "tinypull", 2, overrides={"iterations": 2}, device="cpu",
                                                        evaluate_after=False)).id, 120)
    second = studio.manager.wait(studio.submit(_spec(proxies=(f"run:{run.run_id}", "random"))).id, 240)
    assert second.status == "done", second.message
    assert len(studio.jobs(kind="nas-whole")) == whole_jobs  # no second whole-data job
    assert second.result.whole_key == r.whole_key and np.array_equal(second.result.whole_accuracy, r.whole_accuracy)
    assert len(studio.store.list_artefacts("nas-whole-data")) == 1
    assert second.result.proxy_images == [20, 20] and "run" in second.result.proxies[0]
    # the random proxy trained the same networks on the same images both times
    assert np.allclose(second.result.proxy_accuracy[1], r.proxy_accuracy[0])
    # reopening finds both studies without recomputing
    assert studio.study_state(_spec()).stored.key == r.key
    assert len(studio.studies("nas")) == 2


@pytest.mark.parametrize("changes, message", [
    ({"proxies": ("dm",)}, "neither 'run:<id>'"), ({"proxies": ("run:nope",)}, "No run 'nope'"), ({"proxies": ()}, "at least one proxy"),
    ({"widths": (8,), "norms": ("none",)}, "3 to 720 architectures"), ({"ipc": 0}, "IPC must be a whole number from 1"),
    ({"budget": "huge"}, "Unknown architecture-search budget"), ({"activations": ("tanh",)}, "unknown activation"),
    ({"widths": (8, 10**7)}, "widths must be whole numbers from 1 to 2048"),  # once built, exhausting memory
    ({"depths": (1, 99)}, "depths must be whole numbers from 1 to 16"),
    ({"widths": tuple(range(1, 300)), "depths": (1, 2, 3)}, "this grid has 1,794"),
    ({"bootstrap": 10**12}, "bootstrap must be a whole number from 10 to 100,000"), ({"bootstrap": 0}, "from 10 to"),
    ({"top_k": (999,)}, "top k must be"),
])
def test_bad_input_is_refused_and_nothing_is_stored(studio, changes, message) -> None:
    before = len(studio.store.list_artefacts())
    state = studio.study_state(_spec(**changes))
    assert state.spec is None and message in state.problem
    with pytest.raises((ValueError, LookupError)):
        studio.submit(_spec(**changes))
    assert len(studio.store.list_artefacts()) == before
