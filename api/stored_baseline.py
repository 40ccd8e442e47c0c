"""The baseline file of a scenario on a site stored as data (``PUT /api/v1/sites/{site}``).

A scenario's baseline is a site file (:class:`grid.scenarios.spec.ScenarioSpec`): for a site that
exists only in the store, its current version is written once as a site YAML file with its input
series inline (CSV text, as the store keeps them; :func:`grid.series.load_inputs` reads them from
there), under the system's temporary folder, one file per site, version and digest. The scenario
then runs on exactly that version, also when a newer one is stored while it is queued.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine

from grid.store import site_versions

#: where the stored sites' baseline files are written (below the system's temporary folder)
FOLDER_NAME = "quartiere-stored-sites"


def stored_baseline(engine: Engine, site_id: str, folder: Path | None = None) -> Path | None:
    """The site YAML file of `site_id`'s current stored version (written if not yet there); None
    when the site is not stored as data (or retired)."""
    current = site_versions.current_site(engine, site_id)
    if current is None:
        return None
    root = folder or Path(tempfile.gettempdir()) / FOLDER_NAME
    path = root / f"{site_id}-v{current.version}-{current.digest[:16]}" / "site.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(current.document(), sort_keys=False, allow_unicode=True)
        scratch = path.with_name(f".site-{os.getpid()}.yaml")
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)  # whole or not at all, whatever else writes it at the same time
    return path
