"""Request and response models of the live-data routes: device telemetry, EV sessions, prices,
weather and grid-operator limit orders (see :mod:`grid.ingest.telemetry`, :mod:`grid.ingest.sessions`
and :mod:`grid.ingest.signals` for the rules beyond the schema).

Times are ISO 8601 with a UTC offset (answers in UTC); power in kW (> 0 drawn from the grid),
energy in kWh, prices in EUR/kWh (EUR/MWh and ct/kWh accepted on input).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.params import INSTANT_SCHEMA

SESSION_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
Instant = Annotated[str, Field(json_schema_extra=INSTANT_SCHEMA, description="ISO 8601 with UTC offset.")]
AssetId = Annotated[str, Field(min_length=1, max_length=64)]


class TelemetryPayload(BaseModel):
    """Bulk device telemetry. Each item: ``asset_id``, ``ts`` (time measured, ISO 8601 with
    offset) and one or more of ``soc_kwh``, ``soc_pct`` (battery), ``store_kwh`` or
    ``store_temp_degc`` (heat store; a temperature needs the store's ``store_empty_degc`` and
    ``store_full_degc`` in the site file), ``power_kw`` (any device; > 0 drawn from the grid) — or
    ``quantity`` (soc, store, power), ``value`` and ``unit`` (kWh, Wh, %, degC, kW, W)."""

    telemetry: list[Any] = Field(
        description="Telemetry objects; each one is accepted or rejected on its own.",
        examples=[[{"asset_id": "bat-01", "ts": "2026-01-15T17:00:00+01:00", "soc_kwh": 6.2, "power_kw": -2.5}]],
    )


class AssetState(BaseModel):
    value_kwh: float = Field(description="State of charge (battery) or heat-store content, kWh.")
    unit: str
    measured_at: str


class LatestStates(BaseModel):
    site: str
    at: str = Field(description="The states known at this instant (UTC).")
    states: dict[str, AssetState]


class EvSessionIn(BaseModel):
    """A car plugged into ``charger``: give ``energy_needed_kwh``, or ``target_soc`` with
    ``capacity_kwh`` (and optionally ``initial_soc``)."""

    model_config = ConfigDict(extra="forbid")

    session_id: Annotated[str, Field(pattern=SESSION_ID)] | None = Field(
        default=None, description="Your id for the session (default: a new one)."
    )
    charger: AssetId = Field(description="EV charger id (as in the site YAML).")
    arrival: Instant
    departure: Instant = Field(description="Expected departure (after arrival, not yet past).")
    energy_needed_kwh: Annotated[float, Field(ge=0)] | None = Field(default=None, description="kWh still needed.")
    target_soc: Annotated[float, Field(ge=0, le=1)] | None = Field(default=None, description="Target SoC, 0..1.")
    capacity_kwh: Annotated[float, Field(gt=0)] | None = Field(default=None, description="The car's battery, kWh.")
    initial_soc: Annotated[float, Field(ge=0, le=1)] | None = Field(default=None, description="SoC at arrival, 0..1.")
    v2g_consent: bool = Field(default=False, description="The driver allows discharging (V2G).")


class EvSessionChange(BaseModel):
    """A change of a session that is not plugged out (at least one field)."""

    model_config = ConfigDict(extra="forbid")

    departure: Instant | None = None
    energy_needed_kwh: Annotated[float, Field(ge=0)] | None = None
    target_soc: Annotated[float, Field(ge=0, le=1)] | None = None
    capacity_kwh: Annotated[float, Field(gt=0)] | None = None
    initial_soc: Annotated[float, Field(ge=0, le=1)] | None = None
    v2g_consent: bool | None = None


class PlugOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Instant | None = Field(default=None, description="When the car left (default: now).")


class EvSessionOut(BaseModel):
    session_id: str
    charger: str
    arrival: str
    departure: str
    energy_needed_kwh: float
    target_soc: float | None
    capacity_kwh: float | None
    initial_soc: float | None
    v2g_consent: bool
    plugged_out_at: str | None
    events: list[dict[str, Any]] | None = Field(default=None, description="{kind, at, received_at, source, body}.")


class EvSessionList(BaseModel):
    site: str
    sessions: list[EvSessionOut]


class PricePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Instant
    end: Instant | None = Field(default=None, description="Default: start + resolution_min.")
    price: float = Field(description="In the document's unit.")


class PricesIn(BaseModel):
    """One publication of day-ahead prices (15-minute or hourly)."""

    model_config = ConfigDict(extra="forbid")

    published_at: Instant = Field(description="When the prices were published (not in the future).")
    source: Annotated[str, Field(min_length=1, max_length=64)] = "api"
    unit: Literal["EUR/MWh", "EUR/kWh", "ct/kWh"] = "EUR/MWh"
    resolution_min: Literal[15, 60] | None = Field(default=None, description="Default: from the points' spacing.")
    prices: list[PricePoint] = Field(min_length=1)


class WeatherPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Instant
    end: Instant | None = None
    value: float


class WeatherIn(BaseModel):
    """One publication of a weather forecast quantity."""

    model_config = ConfigDict(extra="forbid")

    published_at: Instant
    source: Annotated[str, Field(min_length=1, max_length=64)] = "api"
    quantity: Literal["temp_degc", "ghi_w_per_m2", "wind_m_per_s"] = "temp_degc"
    resolution_min: Literal[15, 60] | None = None
    points: list[WeatherPoint] = Field(min_length=1)


class PublicationOut(BaseModel):
    site: str
    published_at: str
    source: str
    points: int = Field(description="Intervals stored.")
    start: str
    end: str


class PriceSeries(BaseModel):
    site: str
    as_of: str
    forecast: str = Field(description="The forecast used beyond the last published price.")
    unit: str = "EUR/kWh"
    intervals: list[str]
    price_eur_per_kwh: list[float | None]
    source: list[str] = Field(description="Per interval: published, the forecast's name, or missing.")
    published_at: list[str | None]


class LimitOrderIn(BaseModel):
    """A grid-operator order for one connection: cap import and/or export over [start, end)."""

    model_config = ConfigDict(extra="forbid")

    connection: AssetId
    start: Instant
    end: Instant = Field(description="After start, not yet past.")
    import_kw: Annotated[float, Field(ge=0)] | None = None
    export_kw: Annotated[float, Field(ge=0)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Why: §14a, congestion, ...", examples=["§14a"]
    )


class LimitOrderOut(BaseModel):
    id: str
    site: str
    connection: str
    start: str
    end: str
    import_kw: float | None
    export_kw: float | None
    reason: str
    created_at: str
    cancelled_at: str | None


class LimitOrderAccepted(BaseModel):
    order: LimitOrderOut
    replan_job: dict[str, Any] = Field(description="The re-plan started at once (as from plans/trigger).")


class LimitOrderList(BaseModel):
    site: str
    orders: list[LimitOrderOut]
