"""Membership inference on networks trained on distilled data: attacks, measures, targets, neighbours.

The science of the privacy study; the study itself (which targets, in which order, stored how) is the task
kind in ddcore/tasks/privacy.py.
"""
from .attacks import ATTACK_TITLES, ATTACKS, Outputs, attack_scores, lira_scores, outputs_from_logits
from .metrics import AttackMeasures, Interval, advantage, auc_score, measure, roc_curve, tpr_at_fpr
from .study import TARGET_KINDS, PrivacyResult, TargetResult

__all__ = ["ATTACKS", "ATTACK_TITLES", "AttackMeasures", "Interval", "Outputs", "PrivacyResult", "TARGET_KINDS",
           "TargetResult", "advantage", "attack_scores", "auc_score", "lira_scores", "measure", "outputs_from_logits",
           "roc_curve", "tpr_at_fpr"]
