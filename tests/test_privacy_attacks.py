"""The attack maths on constructed cases: separable and identical score distributions, ROC bookkeeping,
LiRA flagging an example a real network memorised, the member split, and DP-SGD's recorded budget."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddcore.data import load_dataset
from ddcore.data.subsets import MembershipSplit, check_subset, restrict
from ddcore.privacy.attacks import attack_scores, lira_scores, outputs_from_logits
from ddcore.privacy.metrics import advantage, auc_score, measure, roc_curve, tpr_at_fpr
from ddcore.privacy.shadows import shadow_membership, train_shadows
from ddcore.privacy.training import logits_of, real_config, train_dp_sgd, train_target


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_perfectly_separable_scores_give_auc_1_and_full_tpr_at_every_low_fpr() -> None:
    rng = np.random.default_rng(0)
    members, non_members = rng.uniform(2, 3, 500), rng.uniform(0, 1, 2000)
    assert auc_score(members, non_members) == 1.0
    assert tpr_at_fpr(members, non_members, 0.001) == 1.0
    assert advantage(members, non_members) == 1.0
    m = measure(members, non_members, bootstrap=50)
    assert m.auc.low == m.auc.high == 1.0 and m.tpr_at_0_1.value == 1.0 and m.tpr_at_1.value == 1.0
    # reversed, the attack is perfectly wrong: AUC 0 and no member found at a low FPR
    assert auc_score(non_members, members) == 0.0 and tpr_at_fpr(non_members, members, 0.01) == 0.0


def test_identical_distributions_give_auc_near_one_half_within_the_stated_interval() -> None:
    """Same distribution for both: AUC's standard error is sqrt((m+n+1)/(12mn)) ~ 0.0065 for 2000 + 2000, so
    |AUC - 0.5| < 4 standard errors (0.026), and the 95% bootstrap interval holds 0.5 (checked over 5 seeds)."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        members, non_members = rng.normal(size=2000), rng.normal(size=2000)
        m = measure(members, non_members, bootstrap=200, seed=seed)
        assert abs(m.auc.value - 0.5) < 0.026
        assert m.auc.low <= 0.5 <= m.auc.high or abs(m.auc.value - 0.5) > 0.01  # 95%: a miss needs a large deviation
        assert m.tpr_at_1.value < 0.05  # at 1% FPR a chance attack finds about 1% of members


def test_roc_curve_counts_ties_together_and_matches_a_hand_computed_case() -> None:
    members, non_members = np.array([3.0, 2.0, 2.0, 0.0]), np.array([2.0, 1.0, -1.0, -2.0])
    fpr, tpr = roc_curve(members, non_members)
    # thresholds 3 | 2 (two members and a non-member tie) | 1 | 0 | -1 | -2
    assert fpr.tolist() == [0.0, 0.0, 0.25, 0.5, 0.5, 0.75, 1.0]
    assert tpr.tolist() == [0.0, 0.25, 0.75, 0.75, 1.0, 1.0, 1.0]
    assert tpr_at_fpr(members, non_members, 0.0) == 0.25
    # AUC by hand: pairs member > non-member, ties half: 3 beats 4; each 2 beats 3 and ties 1; 0 beats 2
    assert auc_score(members, non_members) == pytest.approx((4 + 3.5 + 3.5 + 2) / 16)
    assert advantage(members, non_members) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="members and non-members"):
        auc_score(np.array([]), non_members)
    with pytest.raises(ValueError, match="finite"):
        auc_score(np.array([np.nan]), non_members)


def test_lira_online_and_offline_on_constructed_shadow_scores() -> None:
    """Candidate 0's phi is high whenever it is IN, low when OUT; a target at the IN level is flagged by both
    variants, one at the OUT level is not."""
    rng = np.random.default_rng(1)
    keep = shadow_membership(candidates=50, shadows=16, seed=0)
    assert (keep.sum(0) == 8).all()
    phi = rng.normal(0, 1, keep.shape)
    phi[:, 0] = np.where(keep[:, 0], 8.0, 0.0) + rng.normal(0, 0.3, 16)
    target_in, target_out = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    target_in[0], target_out[0] = 8.0, 0.0
    for online in (True, False):
        hit = lira_scores(target_in, phi, keep, online=online, fix_variance=False)
        miss = lira_scores(target_out, phi, keep, online=online, fix_variance=False)
        assert hit[0] == hit.max() and hit[0] > miss[0]
    with pytest.raises(ValueError, match="do not line up"):
        lira_scores(target_in[:10], phi, keep, online=True, fix_variance=True)
    with pytest.raises(ValueError, match="shadow models"):
        attack_scores("lira-online", outputs_from_logits(torch.zeros(50, 10), torch.zeros(50, dtype=torch.long)))
    with pytest.raises(ValueError, match="unknown attack"):
        attack_scores("guess", outputs_from_logits(torch.zeros(50, 10), torch.zeros(50, dtype=torch.long)))


def test_lira_flags_an_example_a_real_network_memorised(mnist) -> None:
    """A planted canary (a noise image labelled 3, in the members) can only be fitted by memorising it:
    networks trained with it give it label 3 with high confidence, those without do not. Real MLPs as target
    and shadows; LiRA flags it above every non-member, and with per-example variances ranks it first."""
    device = torch.device("cpu")
    members, others = MembershipSplit("mnist", pool_per_class=8, seed=3).indices(mnist)
    idx = torch.cat([members, others])
    x, y = mnist.normalize(mnist.train.images[idx]), mnist.train.labels[idx].clone()
    planted = 5
    x[planted] = torch.randn(x[planted].shape, generator=torch.Generator().manual_seed(0)) * 1.5
    y[planted] = 3
    cfg = real_config(epochs=100, test_limit=100)
    keep = shadow_membership(len(y), shadows=8, seed=0)
    keep[:, planted] = np.arange(8) % 2 == 0
    phi = train_shadows(mnist, "mlp", x, y, keep, cfg, seed=0, device=device)
    target = train_target(mnist, "mlp", x[: len(members)], y[: len(members)], cfg, seed=99, device=device)
    out = outputs_from_logits(logits_of(target.net, x), y)
    for online in (True, False):
        for fix_variance in (True, False):
            scores = lira_scores(out.phi, phi, keep, online=online, fix_variance=fix_variance)
            assert scores[planted] > scores[len(members):].max(), (online, fix_variance)
        assert int(np.argmax(lira_scores(out.phi, phi, keep, online=online, fix_variance=False))) == planted


def test_the_member_split_never_overlaps_is_balanced_and_seeded(mnist) -> None:
    split = MembershipSplit("mnist", pool_per_class=40, seed=0)
    members, others = split.indices(mnist)
    assert len(set(members.tolist()) & set(others.tolist())) == 0
    assert torch.bincount(mnist.train.labels[members], minlength=10).tolist() == [20] * 10
    assert torch.bincount(mnist.train.labels[others], minlength=10).tolist() == [20] * 10
    again, _ = MembershipSplit("mnist", 40, 0).indices(mnist)
    other_seed, _ = MembershipSplit("mnist", 40, 1).indices(mnist)
    assert torch.equal(members, again) and not torch.equal(members, other_seed)
    seen = restrict(mnist, split.subset())
    assert len(seen.train) == 200 and len(seen.test) == len(mnist.test)
    assert torch.equal(seen.train.images, mnist.train.images[members])
    with pytest.raises(ValueError, match="at least 2 images per class"):
        MembershipSplit("mnist", 1).check()
    with pytest.raises(ValueError, match="smallest class"):
        MembershipSplit("mnist", 100_000).indices(mnist)
    with pytest.raises(ValueError, match="members of a split only"):
        check_subset("mnist", {"membership": {"pool_per_class": 10, "seed": 0, "part": "non-members"}})
    with pytest.raises(ValueError, match="unknown training subset"):
        check_subset("mnist", {"classes": [0, 1]})


def test_a_dp_sgd_target_records_the_privacy_it_spent(mnist) -> None:
    split = MembershipSplit("mnist", pool_per_class=10, seed=0)
    members, _ = split.indices(mnist)
    x, y = mnist.normalize(mnist.train.images[members]), mnist.train.labels[members]
    dp = train_dp_sgd(mnist, "convnet", x, y, epsilon=4.0, epochs=2, seed=0, device=torch.device("cpu"), test_limit=100)
    assert 0 < dp.epsilon <= 4.0 + 1e-6 and dp.epsilon > 3.0  # Opacus picks the noise that spends the budget
    assert dp.noise_multiplier > 0 and 0 <= dp.test_accuracy <= 100
    with pytest.raises(ValueError, match="positive"):
        train_dp_sgd(mnist, "convnet", x, y, epsilon=0, epochs=1, seed=0, device=torch.device("cpu"), test_limit=100)
