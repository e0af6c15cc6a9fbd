"""`from ddcore.evaluate import evaluate`: the public face of ddcore.evaluation (see that package)."""
from .evaluation import *  # noqa: F401,F403
from .evaluation import __all__  # noqa: F401
