"""Analytics open to the customer: one client's figures over a period, computed in SQL from the ledger, and
rendered as HTML with server-drawn SVG charts (the signed report and the collector's portal both use these)."""

from __future__ import annotations

from .errors import AnalyticsError, PeriodError
from .figures import Figures, figures
from .period import Period, parse_period

__all__ = ["AnalyticsError", "Figures", "Period", "PeriodError", "figures", "parse_period"]
