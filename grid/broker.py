"""How a client logs in to the MQTT broker: username/password and TLS, shared by ingestion
(``grid mqtt-ingest``) and set-point publishing (``grid serve``).

Settings come from ``GRID_MQTT_*`` variables (the service reads the same names through
``api.settings.Settings``):

=============================  ==========================================================
``GRID_MQTT_USERNAME``         user name (MQTT CONNECT); none = anonymous
``GRID_MQTT_PASSWORD``         its password
``GRID_MQTT_TLS``              ``true``: TLS with the system's CA certificates
``GRID_MQTT_TLS_CA``           CA certificate file (PEM) of the broker; implies TLS
``GRID_MQTT_TLS_CERT``/``_KEY``  client certificate and key (PEM) for mutual TLS; imply TLS
``GRID_MQTT_TLS_INSECURE``     ``true``: do not check the broker's host name (testing only)
=============================  ==========================================================
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

ENV_PREFIX = "GRID_MQTT_"
TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class BrokerAuth:
    """Credentials and TLS of a broker connection (all optional: anonymous, plain TCP)."""

    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_insecure: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.tls_ca is not None or self.tls_cert is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrokerAuth:
        """The ``GRID_MQTT_*`` settings of the environment (see the module docstring)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name) or None

        def path(name: str) -> Path | None:
            value = get(name)
            return Path(value) if value else None

        return cls(
            username=get("USERNAME"),
            password=get("PASSWORD"),
            tls=(get("TLS") or "").lower() in TRUE,
            tls_ca=path("TLS_CA"),
            tls_cert=path("TLS_CERT"),
            tls_key=path("TLS_KEY"),
            tls_insecure=(get("TLS_INSECURE") or "").lower() in TRUE,
        )

    def apply(self, client: mqtt.Client) -> None:
        """Set the credentials and TLS on `client` (before it connects)."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.uses_tls:
            client.tls_set(
                ca_certs=str(self.tls_ca) if self.tls_ca else None,
                certfile=str(self.tls_cert) if self.tls_cert else None,
                keyfile=str(self.tls_key) if self.tls_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            client.tls_insecure_set(self.tls_insecure)

    def __repr__(self) -> str:  # never show the password
        secret = "***" if self.password else None
        return (
            f"BrokerAuth(username={self.username!r}, password={secret!r}, tls={self.uses_tls}, "
            f"tls_ca={self.tls_ca}, tls_cert={self.tls_cert}, tls_insecure={self.tls_insecure})"
        )
