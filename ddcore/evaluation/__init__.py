"""Evaluation of synthetic sets: protocols (presets), the batched trainer, records and training on the
whole dataset (cached). `ddcore.evaluate` re-exports the public API."""
from .api import check_set, evaluate, set_fingerprint, test_tensors
from .protocol import PRESETS, EvalConfig, ResolvedConfig, get_preset, method_augmentation, paper_config, quick_config
from .reference import REFERENCE_PRESETS, RealTraining, train_on_real
from .result import EvalResult, EvaluationCancelled, library_versions

__all__ = ["PRESETS", "REFERENCE_PRESETS", "EvalConfig", "EvalResult", "EvaluationCancelled",
           "RealTraining", "ResolvedConfig", "check_set", "evaluate", "get_preset", "library_versions", "method_augmentation", "paper_config",
           "quick_config", "set_fingerprint", "test_tensors", "train_on_real"]
