"""Schemathesis hooks for ``st run`` against the service (``SCHEMATHESIS_HOOKS=tests.api.st_hooks``).

``positive_data_acceptance`` (ST202) expects every request the OpenAPI document allows to be
accepted. A few refusals depend on what no JSON Schema can state: the relation between two query
parameters, or the site's own content (its meters, asset ids, the period its inputs cover, its
interval grid). Each route documents them in its 422 description. Exactly those refusals, named
here by their ``detail[].type`` and message, are not counted as failures; any other 422 on
schema-valid data still is (a constraint the document fails to state), and so are all other checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis

#: GET routes: the relations between query parameters stated in the parameter descriptions
QUERY_RELATIONS = {
    ("query", "end"): re.compile(r"^(must be after start|the period may span at most \d+ days)$"),
    ("query", "sensor"): re.compile(r"^give exactly one of sensor or kind$"),
    # forecasts/accuracy: a connection of the site that has measured household load
    ("target",): re.compile(r"^no measured household load for this connection \(measured: .*\)$"),
}
#: POST routes: detail types of refusals against the site's content
CONTENT_TYPES = {
    "/readings": {"rejected_reading", "input_error"},  # every record refused (unknown meter, ...)
    "/readings/csv": {"rejected_reading", "input_error"},  # the file's content (format: binary)
    "/scenarios": {"input_error", "value_error"},  # edits against the site; min <= max of a distribution
    "/telemetry": {"rejected_telemetry", "input_error"},  # every item refused (unknown asset, SoC > capacity ...)
    "/ev-sessions": {"input_error"},  # the site's chargers; departure after arrival and not yet past
    "/ev-sessions/{session_id}": {"input_error"},  # the same for a change
    "/plug-out": {"input_error"},  # not before the arrival, not in the future
    "/prices": {"input_error"},  # the publication's grid, overlaps, market limits, publication time
    "/weather": {"input_error"},  # the same for a weather publication
    "/limits": {"input_error"},  # the site's connections; end after start and not yet past
    "/sites/{site}": {"input_error"},  # the site document: its fields, references and inline series
}
#: writes that answer 409 when they contradict the stored state (documented on the route)
CONFLICTS = ("/ev-sessions", "/ev-sessions/{session_id}")


def documented_refusal(method: str, path: str, detail: Any) -> bool:
    """True when every item of a 422 `detail` is a refusal its route documents as beyond the schema."""
    if not isinstance(detail, list) or not detail:
        return False
    if method == "GET":
        return all(
            isinstance(item, dict)
            and tuple(item.get("loc", ())) in QUERY_RELATIONS
            and QUERY_RELATIONS[tuple(item["loc"])].match(str(item.get("msg", ""))) is not None
            for item in detail
        )
    types = next((t for suffix, t in CONTENT_TYPES.items() if path.endswith(suffix)), None)
    return (
        method in ("POST", "PUT", "PATCH")
        and types is not None
        and all(isinstance(i, dict) and i.get("type") in types for i in detail)
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except ST202 on a documented refusal (see the module docstring)."""
    if getattr(failure, "code", None) != "ST202":
        return True
    if response.status_code == 409:
        return not case.operation.path.endswith(CONFLICTS)
    if response.status_code != 422:
        return True
    try:
        detail = json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return True
    return not documented_refusal(case.method.upper(), case.operation.path, detail)
