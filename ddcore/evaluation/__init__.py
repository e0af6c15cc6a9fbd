"""Evaluation of synthetic sets: protocols (presets), the batched trainer, records, cross-architecture
matrices and whole-dataset reference accuracies. `ddcore.evaluate` re-exports the public API."""
from .api import DEFAULT_ARCHITECTURES, EvalMatrix, check_set, evaluate, evaluate_matrix, set_fingerprint, test_tensors
from .protocol import PRESETS, EvalConfig, ResolvedConfig, get_preset, method_augmentation, paper_config, quick_config
from .reference import REFERENCE_PRESETS, RealTraining, reference_accuracy, train_on_real
from .result import EvalResult, EvaluationCancelled, library_versions

__all__ = ["DEFAULT_ARCHITECTURES", "PRESETS", "REFERENCE_PRESETS", "EvalConfig", "EvalMatrix", "EvalResult",
           "EvaluationCancelled", "RealTraining", "ResolvedConfig", "check_set", "evaluate", "evaluate_matrix", "get_preset",
           "library_versions", "method_augmentation", "paper_config", "quick_config", "reference_accuracy",
           "set_fingerprint", "test_tensors", "train_on_real"]
