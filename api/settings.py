"""Service settings from ``GRID_*`` environment variables and an optional env file.

``GRID_SITES`` is a JSON object mapping site ids to their YAML files, e.g.
``GRID_SITES='{"demo": "data/demo/site.yaml"}'``; ``GRID_DATABASE_URL`` is shared with the store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from grid.broker import BrokerAuth
from grid.errors import InputError, InputErrors
from grid.fleet import DEFAULT_BUDGET_MB
from grid.store.engine import DEFAULT_URL

DEMO_SITE = Path(__file__).resolve().parent.parent / "data" / "demo" / "site.yaml"


class Settings(BaseSettings):
    """Everything the service process needs; see the field descriptions for units."""

    model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_URL, description="SQLAlchemy URL of the store (also the scheduler's job store)."
    )
    sites: dict[str, Path] = Field(
        default_factory=lambda: {"demo": DEMO_SITE}, description="Site id -> site YAML file."
    )
    horizon_hours: float = Field(default=24.0, gt=0, le=168, description="Planning horizon of each run, hours.")
    replan_every_min: int = Field(default=15, description="Minutes between scheduled runs; must divide 60.")
    solver_time_limit_s: float = Field(default=60.0, gt=0, description="HiGHS time limit per run, seconds.")
    solve_in_subprocess: bool = Field(
        default=True, description="Solve in a worker process so that polling stays fast during a solve."
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of a Dask scheduler (tcp://host:8786): every run of every site is a task on that "
        "cluster, each site kept on one worker (its warm model); the service only schedules, stores and serves.",
    )
    dask_workers: int = Field(
        default=0,
        ge=0,
        description="Without `dask_scheduler`: plan on an embedded Dask LocalCluster of this many worker "
        "processes (for many sites on one machine); 0: one solver process per site (solve_in_subprocess).",
    )
    fleet_model_budget_mb: float = Field(
        default=DEFAULT_BUDGET_MB,
        gt=0,
        description="Memory the kept (warm) models of one Dask worker may take, MB; the least recently "
        "used are dropped beyond it and their sites plan cold.",
    )
    misfire_grace_s: int = Field(default=300, ge=1, description="How late a scheduled run may still start, seconds.")
    scheduler_enabled: bool = Field(default=True, description="Run the rolling-horizon scheduler in this process.")
    setpoint_intervals: int = Field(default=4, ge=1, le=96, description="Intervals of set-points published per asset.")
    mqtt_enabled: bool = Field(default=True, description="Publish set-points over MQTT.")
    mqtt_host: str = Field(default="127.0.0.1", description="MQTT broker host.")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="MQTT broker port.")
    mqtt_prefix: str = Field(default="quartier", description="Topic prefix: <prefix>/<site>/setpoints/<asset_id>.")
    mqtt_username: str | None = Field(default=None, description="MQTT user name (none: anonymous).")
    mqtt_password: SecretStr | None = Field(default=None, description="MQTT password of `mqtt_username`.")
    mqtt_tls: bool = Field(default=False, description="Connect with TLS (the system's CA certificates).")
    mqtt_tls_ca: Path | None = Field(default=None, description="CA certificate (PEM) of the broker; implies TLS.")
    mqtt_tls_cert: Path | None = Field(default=None, description="Client certificate (PEM), mutual TLS.")
    mqtt_tls_key: Path | None = Field(default=None, description="Key (PEM) of the client certificate.")
    mqtt_tls_insecure: bool = Field(default=False, description="Skip the broker host name check (testing only).")
    mqtt_publish_deadline_s: float = Field(
        default=30.0,
        gt=0,
        description="How long one set of set-point messages may wait for the broker's acknowledgements, "
        "seconds; longer and /healthz reports the broker stalled (publishing never holds up planning).",
    )
    clock_start: dt.datetime | None = Field(
        default=None,
        description="Replay: the service's clock starts at this instant (ISO 8601 with offset) and runs on "
        "from there; for planning on recorded or demo inputs. Default: the wall clock.",
    )
    auth_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a verified key is trusted without the database, seconds "
        "(a revoked key stops working within this time).",
    )
    wrong_key_per_s: float = Field(
        default=5.0,
        gt=0,
        description="Wrong API keys a client address may try per second once its burst is spent; "
        "more answer 429 with Retry-After, without a database look-up.",
    )
    wrong_key_burst: int = Field(default=20, ge=1, description="Wrong API keys a client address may try at once.")
    max_body_bytes: int = Field(
        default=16 << 20, ge=1, description="Largest request body (JSON), bytes; larger answers 413."
    )
    max_upload_bytes: int = Field(
        default=256 << 20, ge=1, description="Largest file upload (the multipart body), bytes; larger answers 413."
    )
    max_upload_decompressed_bytes: int = Field(
        default=256 << 20,
        ge=1,
        description="Largest size of an uploaded .gz file once decompressed, bytes; larger answers 413 "
        "(bigger files: `grid ingest`).",
    )
    docs_public: bool | None = Field(
        default=None,
        description="Serve /docs, /redoc and /openapi.json without a key (unset: only when `host` is a loopback "
        "address).",
    )
    metrics_public: bool | None = Field(
        default=None, description="Serve /metrics without a key (unset: only when `host` is a loopback address)."
    )
    latest_cache_s: float = Field(
        default=1.0,
        ge=0,
        description="How long the latest plan of a site is cached, seconds (plans made in "
        "this process invalidate it at once; other writers show within this time).",
    )
    scenario_max_hours: float = Field(
        default=24.0 * 28,
        gt=0,
        description="Most hours a scenario run over the API may plan: the sum of its evaluation windows "
        "(its baseline plans as many again).",
    )
    scenario_queue_max: int = Field(
        default=4, ge=1, description="Most queued or running scenario runs per site; more answer 429."
    )
    scenario_dir: Path | None = Field(
        default=None,
        description="Folder of scenario and sweep YAML files the dashboard offers to run (those whose "
        "baseline is the site's YAML); none: the dashboard runs only scenarios typed in as JSON.",
    )
    sweep_max_cases: int = Field(
        default=24, ge=1, description="Most cases of a sweep the dashboard queues at once (each is one scenario run)."
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's OpenTelemetry bridge (traces, metrics and logs to a configured OpenTelemetry "
        "provider); off, requests skip its per-request check.",
    )
    host: str = Field(default="127.0.0.1", description="Address `grid serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `grid serve` listens on.")

    def broker_auth(self) -> BrokerAuth:
        """The MQTT credentials and TLS settings (publishing; ingestion reads the same variables)."""
        return BrokerAuth(
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            tls=self.mqtt_tls,
            tls_ca=self.mqtt_tls_ca,
            tls_cert=self.mqtt_tls_cert,
            tls_key=self.mqtt_tls_key,
            tls_insecure=self.mqtt_tls_insecure,
        )


def load_settings(env_file: Path | None = None) -> Settings:
    """Settings from the environment, and from `env_file` (KEY=value lines) when given. A value
    that does not fit raises :class:`InputErrors`, one entry per variable (``GRID_...``: what is
    wrong, the value seen)."""
    where = f" (environment or {env_file})" if env_file is not None else " (environment)"
    try:
        if env_file is None:
            return Settings()
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        errors = [
            InputError(
                "GRID_" + "_".join(str(part) for part in err["loc"]).upper() + where,
                err["msg"],
                err.get("input", InputError._MISSING),
            )
            for err in exc.errors()
        ]
        raise InputErrors(errors, "settings") from None
