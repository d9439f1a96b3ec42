"""Calendar arithmetic for `occurs` and relative time, in UTC epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FIXED_MS = {
    "millisecond": 1,
    "second": 1000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
}
MONTHS = {"month": 1, "year": 12, "decade": 120, "century": 1200, "millennium": 12000}
UNITS = frozenset(FIXED_MS) | frozenset(MONTHS)


def to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def date_ms(year: int, month: int, day: int) -> int:
    """Midnight UTC of a calendar date; ValueError for an impossible one."""
    return to_ms(datetime(year, month, day, tzinfo=UTC))


def shift(ms: int, amount: int, unit: str) -> int:
    """`ms` moved by `amount` units (calendar months and years keep the day, clamped to the month's end)."""
    if unit in FIXED_MS:
        return ms + amount * FIXED_MS[unit]
    moment = to_datetime(ms)
    months = moment.year * 12 + moment.month - 1 + amount * MONTHS[unit]
    year, month = divmod(months, 12)
    if not 1 <= year <= 9999:
        raise ValueError("the time lies outside years 1 to 9999")
    day = min(moment.day, _month_days(year, month + 1))
    return to_ms(moment.replace(year=year, month=month + 1, day=day))


def truncate(ms: int, unit: str) -> int:
    """The start of the unit that holds `ms` (weeks start on Monday, as ISO 8601 weeks do)."""
    if unit in ("millisecond", "second", "minute", "hour", "day"):
        return ms - ms % FIXED_MS[unit]
    moment = to_datetime(ms)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return to_ms(day - timedelta(days=day.weekday()))
    if unit == "month":
        return to_ms(day.replace(day=1))
    span = {"year": 1, "decade": 10, "century": 100, "millennium": 1000}[unit]
    year = moment.year - moment.year % span if span > 1 else moment.year
    return to_ms(datetime(max(year, 1), 1, 1, tzinfo=UTC))


def _month_days(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
