"""sentryctl: Sentry's deployment orchestrator.

The library core lives in this package; Click lives only in :mod:`orchestrator.cli`.
"""

import logging

__version__ = "0.1.0"

# A library attaches only a NullHandler; the CLI decides what a person sees.
logging.getLogger(__name__).addHandler(logging.NullHandler())
