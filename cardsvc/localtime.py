"""Local days and months: the federation counts them in one IANA timezone (``CARDSVC_TIMEZONE``).

Timestamps stay UTC everywhere (database, audit, API). Only *which day* or *which month* an instant
belongs to is local: these helpers turn an instant into its local date or ``YYYY-MM``, and find the
UTC instant a local day began at, so queries compare stored UTC values with UTC bounds.
The zone is always passed in (``Settings.zone`` → constructor argument), never a module global.
"""

from __future__ import annotations

import datetime as dt


def local_month(at: dt.datetime, tz: dt.tzinfo) -> str:
    """``YYYY-MM`` of the local month the aware instant ``at`` falls in."""
    return at.astimezone(tz).strftime("%Y-%m")


def local_date(at: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The local calendar date of the aware instant ``at``."""
    return at.astimezone(tz).date()


def day_start(at: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant at which the local day containing ``at`` began."""
    midnight = dt.datetime.combine(local_date(at, tz), dt.time(), tzinfo=tz)
    return midnight.astimezone(dt.UTC)

