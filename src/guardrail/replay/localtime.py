"""Branch-local calendar arithmetic over arrays, with the live code's own time zone database.

Live screening converts each timestamp with ``zoneinfo`` (``context.windows.local_time``) and
finds a day's first instant with ``local_midnight``. Here the same functions are called once per
distinct (zone, UTC hour) and (zone, local day), so a replay gives the live answers even where a
zone's rules changed, at array speed.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from guardrail.context.history import utc_micros
from guardrail.context.windows import local_midnight, zone
from guardrail.errors import GuardrailError

I64 = npt.NDArray[np.int64]
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TimeZoneError(GuardrailError, ValueError):
    """A branch time zone that does not exist; names the zone."""


def _zone(name: str) -> ZoneInfo:
    try:
        return zone(name)
    except ValueError as error:
        raise TimeZoneError(str(error)) from None


def _offset_us(tz: dt.tzinfo, instant_us: int) -> int:
    instant = _EPOCH + dt.timedelta(microseconds=instant_us)
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset // dt.timedelta(microseconds=1)


def _unique_pairs(codes: I64, values: I64) -> tuple[list[tuple[int, int]], I64]:
    """Distinct (code, value) pairs and, per element, the index of its pair."""
    low = int(values.min(initial=0))
    width = int(values.max(initial=0)) - low + 1
    combined = codes * width + (values - low)
    # streams come in time order, so equal pairs mostly come in runs: sort the runs' heads only
    heads = np.ones(len(combined), dtype=bool)
    heads[1:] = combined[1:] != combined[:-1]
    keys = np.unique(combined[heads])
    inverse = np.searchsorted(keys, combined).astype(np.int64)
    pairs = [(key // width, key % width + low) for key in keys.tolist()]
    return pairs, inverse


def local_offsets(zone_codes: I64, zone_names: list[str], ts_us: I64) -> I64:
    """UTC offset (µs) of each instant in its zone. Computed per distinct (zone, UTC hour); an
    hour with a zone transition inside it is computed instant by instant."""
    hours = ts_us // HOUR_US
    pairs, inverse = _unique_pairs(zone_codes, hours)
    offsets = np.empty(len(pairs), dtype=np.int64)
    exact = np.zeros(len(pairs), dtype=bool)
    zones = [_zone(name) for name in zone_names]
    for index, (code, hour) in enumerate(pairs):
        tz = zones[code]
        first = _offset_us(tz, hour * HOUR_US)
        last = _offset_us(tz, hour * HOUR_US + HOUR_US - 1)
        offsets[index] = first
        exact[index] = first != last
    result = offsets[inverse]
    for row in np.flatnonzero(exact[inverse]).tolist():
        result[row] = _offset_us(zones[int(zone_codes[row])], int(ts_us[row]))
    return result


def midnights(zone_codes: I64, zone_names: list[str], local_days: I64) -> I64:
    """The UTC instant (µs) of the first instant of each local day (days since 1970-01-01)."""
    pairs, inverse = _unique_pairs(zone_codes, local_days)
    values = np.empty(len(pairs), dtype=np.int64)
    zones = [_zone(name) for name in zone_names]
    epoch_day = dt.date(1970, 1, 1)
    for index, (code, day) in enumerate(pairs):
        date = epoch_day + dt.timedelta(days=day)
        values[index] = utc_micros(local_midnight(date, zones[code]))
    return values[inverse]


def civil(days: I64) -> tuple[I64, I64, I64]:
    """(year, month, day) of days since 1970-01-01, in the proleptic Gregorian calendar (the
    integer algorithm of H. Hinnant's ``civil_from_days``: eras of 400 years from 0000-03-01)."""
    shifted = days + 719_468  # days since 0000-03-01
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1_460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = np.where(month_from_march < 10, month_from_march + 3, month_from_march - 9)
    year = year_of_era + era * 400 + (month <= 2)
    return year, month, day
