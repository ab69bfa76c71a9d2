"""Homes served by the fake Tibber API, and the demo account from docs/tibber-api.md §5."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

GOOD_TOKEN = "good-token"

#: The documented demo token (pyTibber ``DEMO_TOKEN`` since May 2025) and its home.
DEMO_TOKEN = "3A77EECF61BD445F47241A5A36202185C35AF3AF58609E19B53F3A8872AD7BE1-1"
DEMO_HOME_ID = "96a14971-525a-4420-aae9-e5aedaa129ff"
DEMO_USER_NAME = "Arya Stark"

HOME_OSLO = "6f3b2c1e-8d4a-4f7e-9b1c-0a1b2c3d4e01"
HOME_STOCKHOLM = "6f3b2c1e-8d4a-4f7e-9b1c-0a1b2c3d4e02"

#: How a meter reports voltage/current: every frame, only in frames at second 0, 10, ..., 50
#: (Kaifa/Aidon HAN meters), or never (German Pulse IR traces).
PhaseValues = Literal["every_frame", "every_10s", "never"]


@dataclass
class FakeHome:
    """One home of the viewer. Only ``id`` is required; the rest has realistic defaults.

    ``consumption_kwh(hour_start)`` gives the kWh of the hour starting at that local time (None
    means the grid company has not delivered it), ``price_per_kwh(hour_start)`` its price incl.
    VAT. History covers ``history_days`` up to ``history_end`` (default: the current hour).
    """

    id: str
    time_zone: str = "Europe/Oslo"
    app_nickname: str | None = None
    address1: str = "Storgata 1"
    postal_code: str = "0155"
    city: str = "Oslo"
    country: str = "NO"
    latitude: str = "59.9127"
    longitude: str = "10.7461"
    real_time_enabled: bool | None = True
    has_production: bool = False
    power_deal: bool = True
    currency: str = "NOK"
    price_area_code: str = "NO1"
    phases: int = 3
    phase_values: PhaseValues = "every_10s"
    history_days: int = 400
    history_end: datetime | None = None
    consumption_kwh: Callable[[datetime], float | None] | None = None
    price_per_kwh: Callable[[datetime], float] | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def as_graphql(self) -> dict[str, Any]:
        """The home as the Query resolvers see it (keys are GraphQL field names)."""
        status = "running" if self.power_deal else "ended"
        return {
            "_home": self,
            "id": self.id,
            "timeZone": self.time_zone,
            "appNickname": self.app_nickname,
            "size": 120,
            "type": "HOUSE",
            "numberOfResidents": 3,
            "mainFuseSize": 25,
            "hasVentilationSystem": False,
            "address": {
                "address1": self.address1,
                "address2": None,
                "address3": None,
                "city": self.city,
                "postalCode": self.postal_code,
                "country": self.country,
                "latitude": self.latitude,
                "longitude": self.longitude,
            },
            "meteringPointData": {
                "consumptionEan": "7070575000" + self.id[-8:].replace("-", "0"),
                "gridCompany": "Elvia AS" if self.country == "NO" else "Ellevio AB",
                "gridAreaCode": "50Y-0000000001",
                "priceAreaCode": self.price_area_code,
                "productionEan": ("7070575999" + self.id[-8:]) if self.has_production else "",
                "energyTaxType": "normal",
                "vatType": "normal",
                "estimatedAnnualConsumption": 16000,
            },
            "features": {"realTimeConsumptionEnabled": self.real_time_enabled},
            "currentSubscription": {
                "id": "sub-" + self.id[:8],
                "status": status,
                "validFrom": "2024-01-01T00:00:00.000+01:00",
                "validTo": None,
            },
        }


def default_homes() -> list[FakeHome]:
    """Two streaming homes in different zones and currencies; Stockholm also produces."""
    return [
        FakeHome(id=HOME_OSLO, app_nickname="Hytta"),
        FakeHome(
            id=HOME_STOCKHOLM,
            time_zone="Europe/Stockholm",
            app_nickname=None,
            address1="Kungsgatan 8",
            postal_code="11143",
            city="Stockholm",
            country="SE",
            latitude="59.3363",
            longitude="18.0656",
            has_production=True,
            currency="SEK",
            price_area_code="SE3",
        ),
    ]


def demo_home() -> FakeHome:
    """The demo account's home ("Winterfell Castle 1"); no price level data in the real one."""
    return FakeHome(
        id=DEMO_HOME_ID,
        app_nickname="Winterfell",
        address1="Winterfell Castle 1",
        postal_code="0001",
        city="Winterfell",
    )
