"""The answers every route may give besides its own (documented in the OpenAPI document).

Error bodies are ``{"detail": "<message>"}``, or for 422 ``{"detail": [{loc, msg, type, input}]}``.
"""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]

#: every route that needs a key (``X-API-Key`` or ``Authorization: Bearer``)
AUTH: Responses = {
    400: {
        "description": "Malformed request: two X-API-Key or two Authorization headers, or a body that is not "
        "valid JSON."
    },
    401: {"description": "Missing, wrong or revoked API key."},
    403: {"description": "The key lacks the right or is not scoped to this site."},
    404: {"description": "Unknown site (or resource)."},
    429: {"description": "Too many requests (e.g. wrong keys from this client); retry after `Retry-After` seconds."},
    503: {"description": "The store is unreachable; retry after `Retry-After` seconds."},
}
#: routes that take a request body
BODY: Responses = {
    413: {"description": "The request body (or a file, once decompressed) is larger than the service accepts."},
}


def merged(*parts: Responses) -> Responses:
    """Later parts win for the same status code."""
    out: Responses = {}
    for part in parts:
        out.update(part)
    return out
