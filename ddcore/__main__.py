"""`python -m ddcore ...`"""
from .cli import main

raise SystemExit(main())
