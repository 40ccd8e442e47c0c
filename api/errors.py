"""Map the domain's errors to HTTP: InputError(s) -> 422 in FastAPI's validation-error shape
(``detail: [{loc, msg, type, input}]``, ``loc`` naming the field, row or line); an unavailable
database -> 503 with ``Retry-After`` (never a 500)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api import conformance
from api.outage import RETRY_AFTER_S, is_unavailable
from grid.errors import InputError, InputErrors, _jsonable


def error_item(err: InputError) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": [err.where or "input"], "msg": err.what, "type": "input_error"}
    if err.has_value:
        item["input"] = conformance.encodable(_jsonable(err.value))
    return item


async def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    return JSONResponse(
        status_code=422, content={"detail": [error_item(e) for e in errors if isinstance(e, InputError)]}
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        raise exc  # a statement that is wrong, not an outage: a 500 (and its traceback in the log)
    outage = request.app.state.ctx.outage
    outage.down()
    return JSONResponse(
        status_code=503,
        content={"detail": f"{outage.reason}; retry later"},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(InputErrors, _input_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    conformance.install(app)  # encodable 422s, a correct Allow on 405
