"""Keeping secrets out of what sentryctl writes down: the debug log's command line, the ledger's output tails.

Two mechanisms, one home: :func:`mask_argv` for command lines (URL passwords and the values of options that
carry secrets), :func:`redact` for free text that may echo a known secret value (a vaulted token printed by a
command run with ``exec``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .ledger.urls import MASK, mask_url

# Options whose value is a secret or may hold one; a URL anywhere else still has its password masked.
SECRET_OPTIONS = frozenset({"--db-url", "--password", "--token", "--secret"})
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+")
MIN_SECRET = 4  # shorter "secrets" would blank out ordinary text


def mask_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` safe to log: ``--db-url`` (and other secret options) masked in both spellings, every URL's
    password masked."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(mask_url(arg) if "://" in arg else MASK)
            hide_next = False
            continue
        name, eq, value = arg.partition("=")
        if name in SECRET_OPTIONS:
            if eq:
                shown.append(f"{name}={mask_url(value) if '://' in value else MASK}")
            else:
                shown.append(arg)
                hide_next = True
            continue
        shown.append(mask_text(arg))
    return shown


def mask_text(text: str) -> str:
    """``text`` with the password of every URL in it masked (tracebacks repeat the URL people passed)."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret value replaced by ``***``, longest first (so a secret
    that contains another is masked whole)."""
    for value in sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
