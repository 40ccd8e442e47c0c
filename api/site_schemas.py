"""Request and response models of the sites endpoints (``/api/v1/sites/{site}``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SeriesSummary(BaseModel):
    rows: int = Field(description="Intervals (lines after the header).")
    columns: int = Field(description="Value columns (besides timestamp).")
    bytes: int = Field(description="Size of the CSV text.")


class SiteVersionMeta(BaseModel):
    site: str
    version: int = Field(description="1, 2, ... per site; the newest is the current one.")
    created_at: str | None = Field(description="When it was stored (UTC).")
    created_by: str = Field(description="The key (label or id, and role) or the command that stored it.")
    changes: str = Field(description="What changed against the version before.")
    retired: bool = Field(description="This version retires the site (it is no longer planned).")
    digest: str = Field(description="sha256 of the validated description and series.")


class SiteVersionOut(SiteVersionMeta):
    created: bool | None = Field(default=None, description="PUT/DELETE: whether this request stored a version.")
    description: dict[str, Any] = Field(description="The site in the YAML schema; `inputs` names its series.")
    inputs: dict[str, SeriesSummary] = Field(description="Size of each input series.")
    series: dict[str, str] | None = Field(default=None, description="With ?series=true: CSV text per input.")


class SiteVersionList(BaseModel):
    site: str
    versions: list[SiteVersionMeta]
