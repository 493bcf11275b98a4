"""``python -m orchestrator`` is ``sentryctl``."""

from .cli import main

main()
