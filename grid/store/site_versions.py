"""Sites as data: versioned site descriptions with their input series, in the store.

A site document is the site YAML's schema (:class:`grid.domain.Site`) as plain data whose
``inputs`` carry the series themselves, as CSV text (the same columns as the input files). It is
validated exactly as ``grid plan`` validates a site file and its inputs (:func:`validate_document`),
then stored as a new version (:func:`put_site_version`) with who stored it, when, and a one-line
summary of what changed against the version before; the same document again stores nothing. The
newest version of a site is its current one; :func:`retire_site` adds a version that retires the
site (its earlier versions, plans and readings stay). :func:`current_site` gives the current
version as data, :meth:`SiteVersion.site` and :meth:`SiteVersion.inputs` as the planner takes it:
nothing here reads a file, so a site and its series can travel to another machine as they are.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from grid.domain import ASSET_LISTS, Site, load_site, site_from_dict
from grid.errors import InputError, InputErrors
from grid.series import SiteInputs, is_inline, load_inputs
from grid.store.schema import site_versions as table

#: the lists of a site whose entries are told apart by their ``id`` in a change summary
ID_LISTS = ("connections", *ASSET_LISTS, "ev_sessions")
#: how many ids a change summary names per list before "..."
SHOWN_IDS = 3
#: attempts at storing a version when another writer took the same version number meanwhile
PUT_ATTEMPTS = 3
META_COLUMNS = ("site_id", "version", "digest", "created_by", "created_at", "changes", "retired")


@dataclass(frozen=True)
class SiteVersion:
    """One stored version of a site.

    description : the site document with ``inputs`` naming its series (input name -> name).
    series      : input name -> CSV text (empty when read without the series, see :func:`site_versions`).
    changes     : what changed against the version before, for people.
    """

    site_id: str
    version: int
    description: dict[str, Any]
    series: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    created_by: str = ""
    created_at: dt.datetime | None = None
    changes: str = ""
    retired: bool = False

    def document(self) -> dict[str, Any]:
        """The site document with its series inline: what :func:`validate_document` takes."""
        doc = copy.deepcopy(self.description)
        doc["inputs"] = dict(self.series)
        return doc

    def site(self) -> Site:
        """The validated site, its ``inputs`` carrying the series (:func:`grid.series.load_inputs`
        reads them from there)."""
        return site_from_dict(self.document(), context=f"site {self.site_id} version {self.version}")

    def inputs(self, site: Site | None = None) -> SiteInputs:
        """The input series as the planner takes them."""
        return load_inputs(site or self.site())


def validate_document(raw: dict[str, Any], context: str = "site") -> tuple[Site, SiteInputs]:
    """The site and its inputs from a site document, checked as ``grid plan`` checks a site file
    and its input files (the same :class:`InputErrors`, naming field and value). Every input must be
    inline CSV text: a stored site reads no files."""
    if not isinstance(raw, dict):
        raise InputError(context, "must be a mapping with site, connections, ...", type(raw).__name__)
    inputs = raw.get("inputs") or {}
    if isinstance(inputs, dict):
        named = [
            InputError(
                f"inputs.{name}",
                "must be the series as CSV text (timestamp column and one column per asset): "
                "a site stored in the service reads no files",
                value,
            )
            for name, value in inputs.items()
            if isinstance(value, str) and not is_inline(value)
        ]
        if named:
            raise InputErrors(named, context)
    site = site_from_dict(raw, context=context)
    return site, load_inputs(site)


def document_from_file(path: str | Path) -> dict[str, Any]:
    """The site document of a site YAML and its input files (their text inline): what ``grid sites
    import`` stores and a ``PUT`` takes. The YAML is validated here, the series when stored."""
    site = load_site(path)
    document = site.model_dump(mode="json", exclude_unset=True)
    inline = {}
    for name, value in site.inputs.model_dump().items():
        if value is None:
            continue
        where = site.base_dir / value
        try:
            inline[name] = value if is_inline(value) else where.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"inputs.{name}", f"cannot read {where} ({exc.strerror})", value) from None
    document["inputs"] = inline
    return document


def _split(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(description with ``inputs`` naming the series, input name -> CSV text)."""
    description = {k: v for k, v in raw.items() if k != "inputs"}
    series = {name: text for name, text in (raw.get("inputs") or {}).items() if text is not None}
    description["inputs"] = {name: name for name in series}
    return description, series


def _digest(site: Site, series: dict[str, str]) -> str:
    """sha256 of the validated site (defaults filled in, so that YAML and JSON of the same site
    agree) and its series."""
    normal = site.model_dump(mode="json", exclude={"inputs"})
    text = json.dumps([normal, series], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def put_site_version(
    engine: Engine, site_id: str, raw: dict[str, Any], created_by: str, now: dt.datetime
) -> tuple[SiteVersion, bool]:
    """Validate the site document `raw` (:func:`validate_document`) and store it as the next
    version of `site_id`; (the current version, True if it is new). A document equal to the
    current version stores nothing; a retired site comes back with a new version."""
    site, _inputs = validate_document(raw, context=f"site {site_id}")
    if site.id != site_id:
        raise InputError("site.id", f"must be {site_id!r}, the site this version is stored for", site.id)
    description, series = _split(raw)
    if "\\u0000" in json.dumps(description, default=str) or any("\x00" in text for text in series.values()):
        raise InputError("site", "contains a NUL character (\\u0000), which no text field may hold")
    digest = _digest(site, series)
    for attempt in range(PUT_ATTEMPTS):
        try:
            with engine.begin() as conn:
                latest = _latest(conn, site_id, with_series=True)
                if latest is not None and not latest.retired and latest.digest == digest:
                    return latest, False
                before = _latest_active(conn, site_id) if latest is not None and latest.retired else latest
                changes = describe_changes(before, description, series)
                if latest is not None and latest.retired:
                    changes = f"restored; {changes}"
                row = SiteVersion(
                    site_id,
                    (latest.version + 1) if latest is not None else 1,
                    description,
                    series,
                    digest,
                    created_by,
                    now,
                    changes,
                )
                _insert(conn, row)
                return row, True
        except IntegrityError:  # another writer stored the same version number first: read again
            if attempt == PUT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def retire_site(engine: Engine, site_id: str, created_by: str, now: dt.datetime) -> tuple[SiteVersion, bool] | None:
    """Retire `site_id`: a new version with the current description, marked retired (its earlier
    versions, plans and readings stay). (that version, True if new); None when the store holds
    no version of the site. Retiring a retired site stores nothing."""
    with engine.begin() as conn:
        latest = _latest(conn, site_id, with_series=True)
        if latest is None:
            return None
        if latest.retired:
            return latest, False
        row = SiteVersion(
            site_id,
            latest.version + 1,
            latest.description,
            latest.series,
            latest.digest,
            created_by,
            now,
            "retired",
            retired=True,
        )
        _insert(conn, row)
        return row, True


def current_site(engine: Engine, site_id: str) -> SiteVersion | None:
    """The current version of `site_id` with its series; None if the store has none or the site
    is retired."""
    with engine.connect() as conn:
        latest = _latest(conn, site_id, with_series=True)
    return None if latest is None or latest.retired else latest


def latest_version(engine: Engine, site_id: str, with_series: bool = True) -> SiteVersion | None:
    """The newest version of `site_id`, retired or not; None if the store has none."""
    with engine.connect() as conn:
        return _latest(conn, site_id, with_series)


def site_versions(engine: Engine, site_id: str) -> list[SiteVersion]:
    """Every version of `site_id`, oldest first, with their descriptions but not their series."""
    query = (
        sa.select(*[table.c[c] for c in META_COLUMNS], table.c.description)
        .where(table.c.site_id == site_id)
        .order_by(table.c.version)
    )
    with engine.connect() as conn:
        return [_row(r, with_series=False) for r in conn.execute(query)]


def list_sites(engine: Engine, include_retired: bool = False) -> list[SiteVersion]:
    """The newest version of every stored site (without series), by site id; retired ones only
    with `include_retired`."""
    query = (
        sa.select(*[table.c[c] for c in META_COLUMNS], table.c.description).join(*_newest()).order_by(table.c.site_id)
    )
    with engine.connect() as conn:
        rows = [_row(r, with_series=False) for r in conn.execute(query)]
    return [r for r in rows if include_retired or not r.retired]


def version_numbers(engine: Engine) -> dict[str, tuple[int, bool]]:
    """Site id -> (newest version, retired) of every stored site: a cheap look whether anything
    changed."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.site_id, table.c.version, table.c.retired).join(*_newest())).all()
    return {site_id: (int(version), bool(retired)) for site_id, version, retired in rows}


def version_of(engine: Engine, site_id: str) -> tuple[int, bool] | None:
    """(newest version, retired) of `site_id`, None if the store has none: read before each run."""
    query = (
        sa.select(table.c.version, table.c.retired)
        .where(table.c.site_id == site_id)
        .order_by(table.c.version.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (int(row.version), bool(row.retired))


def _newest() -> tuple[Any, Any]:
    """(subquery, join condition) selecting the newest version of each site."""
    newest = (
        sa.select(table.c.site_id, sa.func.max(table.c.version).label("version")).group_by(table.c.site_id).subquery()
    )
    return newest, sa.and_(table.c.site_id == newest.c.site_id, table.c.version == newest.c.version)


def _latest(conn: Connection, site_id: str, with_series: bool) -> SiteVersion | None:
    columns = [*[table.c[c] for c in META_COLUMNS], table.c.description]
    if with_series:
        columns.append(table.c.series)
    query = sa.select(*columns).where(table.c.site_id == site_id).order_by(table.c.version.desc()).limit(1)
    row = conn.execute(query).first()
    return None if row is None else _row(row, with_series)


def _latest_active(conn: Connection, site_id: str) -> SiteVersion | None:
    query = (
        sa.select(*[table.c[c] for c in META_COLUMNS], table.c.description, table.c.series)
        .where(table.c.site_id == site_id, table.c.retired == sa.false())
        .order_by(table.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _row(row, with_series=True)


def _row(row: Any, with_series: bool) -> SiteVersion:
    return SiteVersion(
        row.site_id,
        int(row.version),
        json.loads(row.description),
        json.loads(row.series) if with_series else {},
        row.digest,
        row.created_by,
        row.created_at,
        row.changes,
        bool(row.retired),
    )


def _insert(conn: Connection, row: SiteVersion) -> None:
    conn.execute(
        table.insert().values(
            site_id=row.site_id,
            version=row.version,
            description=json.dumps(row.description, default=str),
            series=json.dumps(row.series),
            digest=row.digest,
            created_by=row.created_by[:200],
            created_at=row.created_at,
            changes=row.changes,
            retired=row.retired,
        )
    )


# --- what changed ---------------------------------------------------------------------------------


def describe_changes(before: SiteVersion | None, description: dict[str, Any], series: dict[str, str]) -> str:
    """One line for people: what `description` and `series` change against `before` (ids added,
    removed or changed per list, settings changed, series changed), or the site's size for a first
    version."""
    if before is None:
        counts = ", ".join(f"{len(description.get(k) or [])} {k}" for k in ID_LISTS if description.get(k))
        return f"created: {counts}" if counts else "created"
    old = before.description
    parts: list[str] = []
    for key in sorted(set(old) | set(description), key=_key_order):
        if key == "inputs" or old.get(key) == description.get(key):
            continue
        if key in ID_LISTS:
            parts.append(_list_changes(key, old.get(key) or [], description.get(key) or []))
        elif key == "site" and isinstance(old.get(key), dict) and isinstance(description.get(key), dict):
            a, b = old[key], description[key]
            fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            parts.append(", ".join(f"site.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in fields))
        else:
            parts.append(f"{key} changed")
    changed = sorted(k for k in set(before.series) | set(series) if before.series.get(k) != series.get(k))
    if changed:
        parts.append(f"series changed: {', '.join(changed)}")
    return "; ".join(p for p in parts if p) or "no change"


def _key_order(key: str) -> tuple[int, str]:
    order = ("site", *ID_LISTS)
    return (order.index(key), key) if key in order else (len(order), key)


def _list_changes(key: str, old: list[Any], new: list[Any]) -> str:
    def by_id(items: list[Any]) -> dict[str, Any]:
        return {str(i.get("id")) if isinstance(i, dict) else str(i): i for i in items}

    a, b = by_id(old), by_id(new)
    added = [k for k in b if k not in a]
    removed = [k for k in a if k not in b]
    changed = [k for k in b if k in a and a[k] != b[k]]
    told = []
    for sign, ids in (("+", added), ("-", removed), ("~", changed)):
        if ids:
            shown = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
            told.append(f"{sign}{len(ids)} ({shown})")
    return f"{key} {' '.join(told)}" if told else f"{key} reordered"
