"""Membership scores from a model's outputs: the loss and confidence thresholds, and LiRA.

- Loss threshold (Yeom et al., CSF 2018): a member tends to have a lower loss; score = -loss.
- Confidence threshold (Salem et al., NDSS 2019): a member tends to get a more confident prediction;
  score = the largest softmax probability (needs no label).
- LiRA (Carlini et al., S&P 2022, arXiv 2112.03570): per example, compare the target's logit-scaled
  confidence phi = log(p_y / (1 - p_y)) with shadow models trained with (IN) and without (OUT) that
  example. Online: the log likelihood ratio of two Gaussians fitted to the IN and OUT phis. Offline (no IN
  shadows, so no training per query): the one-sided test Pr[Z < phi], Z ~ N(mu_out, sigma_out^2). With few
  shadow models the paper uses one global variance (fix_variance), estimated from all examples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ATTACKS = ("loss", "confidence", "lira-offline", "lira-online")
ATTACK_TITLES = {"loss": "Loss threshold", "confidence": "Confidence threshold",
                 "lira-offline": "LiRA (offline)", "lira-online": "LiRA (online)"}


@dataclass(frozen=True)
class Outputs:
    """What a model says about each candidate: its loss, top confidence and logit-scaled true-class confidence."""

    loss: np.ndarray
    confidence: np.ndarray
    phi: np.ndarray


def outputs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> Outputs:
    logits = logits.detach().double()
    labels = labels.long()
    loss = F.cross_entropy(logits, labels, reduction="none")
    confidence = logits.softmax(1).max(1).values
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    phi = true - torch.logsumexp(others, 1)  # log p_y - log(1 - p_y), stable for confident models
    return Outputs(loss.numpy(), confidence.numpy(), phi.numpy())


def lira_scores(target_phi: np.ndarray, shadow_phi: np.ndarray, shadow_in: np.ndarray, online: bool,
                fix_variance: bool) -> np.ndarray:
    """LiRA score per candidate (higher: more likely a member).

    target_phi: (N,) the target's phi per candidate; shadow_phi: (K, N) each shadow's phi; shadow_in: (K, N)
    bool, whether the candidate was in that shadow's training set."""
    phi = np.asarray(shadow_phi, dtype=np.float64)
    keep = np.asarray(shadow_in, dtype=bool)
    if phi.shape != keep.shape or phi.shape[1] != np.asarray(target_phi).shape[0]:
        raise ValueError(f"shadow scores {phi.shape}, membership {keep.shape} and target scores "
                         f"{np.asarray(target_phi).shape} do not line up")
    out_count = (~keep).sum(0)
    if (out_count < 1).any():
        raise ValueError("LiRA needs at least one shadow model without each candidate")
    mu_out, sd_out = _masked_mean_std(phi, ~keep)
    if fix_variance:
        sd_out = np.full_like(sd_out, _pooled_std(phi, ~keep))
    x = np.asarray(target_phi, dtype=np.float64)
    if not online:
        from scipy.stats import norm

        return norm.cdf(x, mu_out, sd_out + 1e-30)
    if ((keep).sum(0) < 1).any():
        raise ValueError("online LiRA needs at least one shadow model with each candidate")
    mu_in, sd_in = _masked_mean_std(phi, keep)
    if fix_variance:
        sd_in = np.full_like(sd_in, _pooled_std(phi, keep))
    return _log_normal(x, mu_in, sd_in) - _log_normal(x, mu_out, sd_out)


def _masked_mean_std(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = np.maximum(mask.sum(0), 1)
    mean = np.where(mask, x, 0).sum(0) / count
    var = (np.where(mask, x - mean, 0) ** 2).sum(0) / count
    return mean, np.sqrt(var)


def _pooled_std(x: np.ndarray, mask: np.ndarray) -> float:
    """One standard deviation for all candidates: of the deviations from each candidate's own mean."""
    mean, _ = _masked_mean_std(x, mask)
    dev = np.where(mask, x - mean, np.nan)
    return float(np.nanstd(dev)) if np.isfinite(dev).any() else 1.0


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    sd = np.maximum(sd, 1e-6)
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)


def attack_scores(attack: str, target: Outputs, shadow_phi: np.ndarray | None = None,
                  shadow_in: np.ndarray | None = None, fix_variance: bool = True) -> np.ndarray:
    """The membership score of every candidate under one attack."""
    if attack == "loss":
        return -target.loss
    if attack == "confidence":
        return target.confidence
    if attack in ("lira-offline", "lira-online"):
        if shadow_phi is None or shadow_in is None:
            raise ValueError(f"{ATTACK_TITLES[attack]} needs shadow models")
        return lira_scores(target.phi, shadow_phi, shadow_in, online=attack == "lira-online", fix_variance=fix_variance)
    raise ValueError(f"unknown attack '{attack}'; the attacks are {', '.join(ATTACKS)}")
