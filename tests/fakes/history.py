"""``Home.consumption``: deterministic hourly history, aggregated and paged like Tibber.

Cursors are base64 of the node's ``from`` string. A cursor of a bare date (``base64("2024-01-01")``)
means local midnight of that date and is inclusive for ``after``, so ``first: N, after: <date>``
starts at that midnight; other cursors are exclusive. Page sizes are silently capped.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from graphql import GraphQLError

from tests.fakes.homes import FakeHome

PAGE_CAPS = {"HOURLY": 744, "DAILY": 31, "WEEKLY": 52, "MONTHLY": 12, "ANNUAL": 1}


def encode_cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decode_cursor(cursor: str, tz: ZoneInfo) -> tuple[datetime, bool]:
    """(instant, inclusive) for a cursor; bare dates are inclusive local midnights."""
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tz), True
        moment = datetime.fromisoformat(text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)), False


def _stamp(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def _default_kwh(home: FakeHome, hour_start: datetime) -> float:
    noise = zlib.crc32(f"{home.id}{hour_start.isoformat()}".encode()) % 1000 / 1000
    peak = 0.35 if hour_start.hour in (7, 8, 17, 18, 19, 20) else 0.0
    return round(0.25 + peak + 0.4 * noise, 3)


def _default_price(hour_start: datetime) -> float:
    return 1.1 + (0.45 if 7 <= hour_start.hour <= 20 else 0.0) + 0.01 * (hour_start.day % 7)


def _hours(home: FakeHome) -> list[dict[str, Any]]:
    """Hourly nodes from local midnight ``history_days`` ago to the last complete hour."""
    tz = home.tz
    end = home.history_end or datetime.now(tz)
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first_day = (end.astimezone(tz) - timedelta(days=home.history_days)).date()
    moment = datetime.combine(first_day, datetime.min.time(), tz).astimezone(UTC)
    kwh_of = home.consumption_kwh or (lambda start: _default_kwh(home, start))
    price_of = home.price_per_kwh or _default_price
    nodes = []
    while moment < end:
        local = moment.astimezone(tz)
        kwh = kwh_of(local)
        price = round(price_of(local), 4)
        nodes.append(
            {
                "_start": moment,
                "from": _stamp(moment, tz),
                "to": _stamp(moment + timedelta(hours=1), tz),
                "consumption": kwh,
                "unitPrice": price,
                "unitPriceVAT": round(price * 0.2, 4),
                "cost": None if kwh is None else round(kwh * price, 4),
            }
        )
        moment += timedelta(hours=1)
    return nodes


def _period_start(local: datetime, resolution: str) -> datetime:
    day = local.date()
    if resolution == "WEEKLY":
        day -= timedelta(days=day.weekday())
    elif resolution == "MONTHLY":
        day = day.replace(day=1)
    elif resolution == "ANNUAL":
        day = day.replace(month=1, day=1)
    return datetime.combine(day, datetime.min.time(), local.tzinfo)


def _next_period(start: datetime, resolution: str) -> datetime:
    day = start.date()
    if resolution == "DAILY":
        day += timedelta(days=1)
    elif resolution == "WEEKLY":
        day += timedelta(days=7)
    elif resolution == "MONTHLY":
        day = day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)
    else:
        day = day.replace(year=day.year + 1, month=1, day=1)
    return datetime.combine(day, datetime.min.time(), start.tzinfo)


def _periods(home: FakeHome, resolution: str) -> list[dict[str, Any]]:
    hours = _hours(home)
    if resolution == "HOURLY" or not hours:
        return hours
    tz = home.tz
    first = hours[0]["_start"]
    end = hours[-1]["_start"] + timedelta(hours=1)
    groups: dict[datetime, list[dict[str, Any]]] = {}
    for node in hours:
        groups.setdefault(_period_start(node["_start"].astimezone(tz), resolution), []).append(node)
    periods = []
    for start, members in groups.items():
        stop = _next_period(start, resolution)
        if start < first or stop > end:
            continue  # only complete periods, as Tibber returns them
        known = [n for n in members if n["consumption"] is not None]
        kwh = round(sum(n["consumption"] for n in known), 3) if known else None
        cost = round(sum(n["cost"] for n in known), 4) if known else None
        price = round(cost / kwh, 4) if kwh and cost is not None else None
        periods.append(
            {
                "_start": start,
                "from": _stamp(start, tz),
                "to": _stamp(stop, tz),
                "consumption": kwh,
                "unitPrice": price,
                "unitPriceVAT": None if price is None else round(price * 0.2, 4),
                "cost": cost,
            }
        )
    return periods


def consumption_connection(
    home: FakeHome,
    *,
    resolution: str,
    first: int | None = None,
    last: int | None = None,
    before: str | None = None,
    after: str | None = None,
    filterEmptyNodes: bool | None = False,
) -> dict[str, Any]:
    """The ``HomeConsumptionConnection`` for one page."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise GraphQLError(f"'{name}' must be a non-negative integer")
    tz = home.tz
    nodes = _periods(home, resolution)
    for node in nodes:
        node.update(
            consumptionUnit="kWh", currency=home.currency, totalCost=node["cost"], unitCost=None
        )
    empty = [n["_start"] for n in nodes if n["consumption"] is None]
    if filterEmptyNodes:
        nodes = [n for n in nodes if n["consumption"] is not None]

    window = nodes
    if after is not None:
        moment, inclusive = _decode_cursor(after, tz)
        window = [
            n for n in window if n["_start"] > moment or (inclusive and n["_start"] == moment)
        ]
    if before is not None:
        moment, _ = _decode_cursor(before, tz)
        window = [n for n in window if n["_start"] < moment]
    cap = PAGE_CAPS[resolution]
    if first is not None:
        page = window[: min(first, cap)]
    else:
        size = min(last if last is not None else cap, cap)
        page = window[len(window) - size :] if size else []

    known = [n for n in page if n["consumption"] is not None]
    # `filtered` counts the empty nodes removed inside the span the page covers
    filtered = 0
    if filterEmptyNodes and page:
        filtered = sum(1 for s in empty if page[0]["_start"] <= s <= page[-1]["_start"])
    edges = [{"cursor": encode_cursor(n["from"]), "node": n} for n in page]
    index = {id(n): i for i, n in enumerate(nodes)}
    return {
        "nodes": page,
        "edges": edges,
        "pageInfo": {
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
            "hasPreviousPage": bool(page) and index[id(page[0])] > 0,
            "hasNextPage": bool(page) and index[id(page[-1])] < len(nodes) - 1,
            "count": len(page),
            "currency": home.currency,
            "totalConsumption": round(sum(n["consumption"] for n in known), 3),
            "totalCost": round(sum(n["cost"] for n in known), 4),
            "filtered": filtered,
        },
    }
