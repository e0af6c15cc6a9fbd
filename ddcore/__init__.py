"""ddcore: the DD Studio engine for dataset distillation (data, models, methods, evaluation, jobs).

It never imports streamlit; the UI drives it through ddcore.platform.bridge (see ddcore/platform/__init__.py).
"""
__version__ = "0.1.0"
