"""The ASGI application: routes under ``/v1``, problem+json errors, the body-size limit and
the OpenAPI document. Endpoints parse, call ``Service`` and render; nothing else."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardrail.model.decision import Decision
from guardrail.model.event import Event
from guardrail.server import schemas
from guardrail.server.auth import Authenticator, FailureLimiter
from guardrail.server.config import CONFIG_ENV, ServeConfig, load_config
from guardrail.server.keys import Principal, Role
from guardrail.server.problems import (
    MEDIA_TYPE,
    Problem,
    ProblemError,
    internal,
    invalid,
    loads_object,
    malformed_json,
    not_found,
    too_large,
    unavailable,
)
from guardrail.server.service import Service, public_decision, session_view
from guardrail.version import __version__

logger = logging.getLogger("guardrail.server")
JSON = "application/json"
OCTETS = "application/octet-stream"
CasePath = Annotated[str, PathParam(min_length=1, max_length=64)]
_BATCH = TypeAdapter(schemas.BatchRequest)


def problem_response(error: ProblemError, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    return Response(
        error.body(instance),
        status_code=error.status,
        media_type=MEDIA_TYPE,
        headers=error.headers,
    )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 before the application reads
    them (by Content-Length, and by counting for chunked bodies)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # answered as a problem by the app's handler
                    raise too_large(self.limit)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = too_large(self.limit)
        body = error.body(scope.get("path"))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(config: ServeConfig, service: Service | None = None) -> ASGIWithLimit:
    """The application for ``config``; ``service`` is started on first use if not given."""
    state: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["service"] = service if service is not None else Service.start(config)
        try:
            yield
        finally:
            state["service"].close()

    app = FastAPI(
        title="guardrail",
        version=__version__,
        summary="Counter-side anti-fraud screening for bank teller systems.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    def svc() -> Service:
        return state["service"]

    app.state.limiter = FailureLimiter(config.limits.auth_failures_per_minute)
    app.state.service = svc

    # -- errors ------------------------------------------------------------------------------
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> Response:
        return problem_response(error, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        problems: list[tuple[str, str]] = []
        for item in error.errors():
            if item.get("type") == "json_invalid":
                return problem_response(malformed_json("the body is not valid JSON"), request)
            location = [str(p) for p in item.get("loc", ()) if p not in ("body",)]
            message = "unknown field" if item.get("type") == "extra_forbidden" else item["msg"]
            problems.append((".".join(location) or "(body)", str(message)))
        return problem_response(invalid(problems), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            return problem_response(not_found(f"no such resource {request.url.path}"), request)
        slug = "method-not-allowed" if error.status_code == 405 else "http-error"
        detail = (
            f"{request.method} is not allowed on {request.url.path}"
            if error.status_code == 405
            else "the request was refused"
        )
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every route of the path, not only the first one found
            headers["Allow"] = ", ".join(_allowed_methods(app, request.url.path))
        refused = ProblemError(error.status_code, slug, "Request refused", detail, headers=headers)
        return problem_response(refused, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        logger.error(
            "unexpected error %s on %s %s",
            reference,
            request.method,
            request.url.path,
            exc_info=error,
        )
        return problem_response(internal(reference), request)

    # -- screening ---------------------------------------------------------------------------
    async def acknowledged(decision: Decision, future: Awaitable[int]) -> Response:
        try:
            seq = await future
        except Exception as error:
            svc().metrics.store_error("audit")
            reference = uuid.uuid4().hex[:12]
            logger.error("audit write failed (%s)", reference, exc_info=error)
            raise unavailable(
                f"the decision could not be written to the audit log; it is not valid ({reference})"
            ) from None
        return Response(
            public_decision(decision).model_dump_json(),
            media_type=JSON,
            headers={"Guardrail-Audit-Seq": str(seq)},
        )

    @app.post(
        "/v1/screen",
        summary="Screen one event",
        description="The decision, as `guardrail screen --json` prints it, once it is durably in "
        "the audit log (its seq in the `Guardrail-Audit-Seq` header). Tellers and supervisors, "
        "as themselves (the event's `teller_id` is the key's name).",
        responses={200: {"model": Decision}},
        openapi_extra=_event_body(),
        tags=["screening"],
    )
    async def screen(request: Request, principal: Caller) -> Response:
        event = svc().parse(await request.body())
        decision, future = svc().screen(principal, event)
        return await acknowledged(decision, asyncio.wrap_future(future))

    @app.post(
        "/v1/screen/batch",
        summary="Screen several events",
        description="Each event is validated and screened on its own; the answer lists a "
        "decision or the event's errors per index. All decisions are in the audit log first.",
        response_model=schemas.BatchResponse,
        tags=["screening"],
    )
    async def screen_batch(request: Request, principal: Caller) -> Response:
        body = loads_object(await request.body())
        batch = _validate(_BATCH, body)
        limit = svc().config.limits.max_batch
        if len(batch.events) > limit:
            raise invalid(
                [("events", f"at most {limit} events per batch, got {len(batch.events)}")]
            )
        results: list[schemas.BatchItem] = []
        pending: list[tuple[int, Decision, asyncio.Future[int]]] = []
        for index, raw in enumerate(batch.events):
            try:
                event = svc().parse(raw)
            except ProblemError as error:
                if error.status != 422:
                    raise
                results.append(
                    schemas.BatchItem(
                        index=index, errors=[{"field": f, "message": m} for f, m in error.errors]
                    )
                )
                continue
            decision, queued = svc().screen(principal, event)
            pending.append((index, decision, asyncio.wrap_future(queued)))
        for index, decision, waiting in pending:
            await acknowledged(decision, waiting)
            results.append(schemas.BatchItem(index=index, decision=public_decision(decision)))
        results.sort(key=lambda item: item.index)
        return Response(schemas.BatchResponse(results=results).model_dump_json(), media_type=JSON)

    @app.post(
        "/v1/executed",
        summary="Record a carried-out transaction in the shared history",
        response_model=schemas.ExecutedResponse,
        openapi_extra=_event_body(),
        tags=["screening"],
    )
    async def executed(request: Request, principal: Caller) -> schemas.ExecutedResponse:
        event = svc().parse(await request.body())
        svc().record_executed(principal, event)
        return schemas.ExecutedResponse(event_id=event.event_id, recorded=True)

    # -- counter sessions --------------------------------------------------------------------
    @app.post(
        "/v1/sessions",
        summary="Open a counter session from an event (screens it)",
        status_code=201,
        response_model=schemas.SessionView,
        openapi_extra=_event_body(),
        tags=["sessions"],
    )
    def open_session(
        request_body: Annotated[bytes, Depends(_raw_body)], principal: Caller
    ) -> schemas.SessionView:
        event = svc().parse(request_body)
        return session_view(svc().open_session(principal, event))

    @app.get(
        "/v1/sessions/{session_id}",
        summary="Read a counter session",
        response_model=schemas.SessionView,
        tags=["sessions"],
    )
    def read_session(session_id: str, principal: Caller) -> schemas.SessionView:
        return session_view(svc().read_session(principal, session_id))

    @app.post(
        "/v1/sessions/{session_id}/steps",
        summary="Take one step of a counter session",
        description="Tellers take their own sessions' steps; `supervisor_*` steps need a "
        "supervisor key of another person than the session's teller (four eyes).",
        response_model=schemas.SessionView,
        tags=["sessions"],
    )
    def take_step(
        session_id: str, body: schemas.StepRequest, principal: Caller
    ) -> schemas.SessionView:
        return session_view(svc().step(principal, session_id, body))

    # -- reports (auditors) --------------------------------------------------------------------
    @app.get("/v1/reports/period", tags=["reports"])
    def report(
        principal: Caller,
        by: str = "",
        start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
        tz: Annotated[str, Query(max_length=64)] = "Asia/Shanghai",
        kind: Annotated[list[str] | None, Query(max_length=64)] = None,
        channel: Annotated[list[str] | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """The period report (as ``guardrail audit report --format json``): ``by`` one or a
        comma list of day, week, month, quarter, branch, rule, kind, channel, teller, typology;
        ``from``/``to`` whole days in ``tz``. Auditors only."""
        result = svc().report(
            principal,
            by=by[:200],
            start=start,
            end=end,
            tz=tz,
            kinds=kind or (),
            channels=channel or (),
        )
        return result.to_dict()

    @app.get("/v1/reports/dashboard", response_class=HTMLResponse, tags=["reports"])
    def dashboard(
        principal: Caller,
        start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
        tz: Annotated[str, Query(max_length=64)] = "Asia/Shanghai",
    ) -> HTMLResponse:
        """The self-contained HTML dashboard (as ``--format html``). Auditors only."""
        return HTMLResponse(svc().dashboard(principal, start=start, end=end, tz=tz))

    # -- the case ledger (supervisors and auditors) -------------------------------------------
    @app.get("/v1/cases", response_model=schemas.CaseList, tags=["cases"])
    def list_cases(
        principal: Caller, status: Literal["open", "closed", "all"] = "open"
    ) -> schemas.CaseList:
        """Cases in order of opening (as ``guardrail cases list``), without their entries."""
        return svc().cases.list(principal, status)

    @app.post("/v1/cases", status_code=201, response_model=schemas.CaseWritten, tags=["cases"])
    def open_case(body: schemas.CaseOpenRequest, principal: Caller) -> schemas.CaseWritten:
        """Open a complaint, a friction complaint or a case by hand; written by the key's
        holder. Parties are stored protected."""
        return svc().cases.open(principal, body)

    @app.get("/v1/cases/{case_id}", tags=["cases"])
    def show_case(case_id: CasePath, principal: Caller) -> dict[str, Any]:
        """The case as it stands, with every ledger entry and its seq in the chain."""
        return svc().cases.show(principal, case_id)

    @app.post("/v1/cases/{case_id}/notes", response_model=schemas.CaseWritten, tags=["cases"])
    def note_case(
        case_id: CasePath, body: schemas.CaseNoteRequest, principal: Caller
    ) -> schemas.CaseWritten:
        """Add a progress note (text with digit runs redacted)."""
        return svc().cases.note(principal, case_id, body)

    @app.post(
        "/v1/cases/{case_id}/evidence",
        status_code=201,
        response_model=schemas.CaseWritten,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        tags=["cases"],
    )
    def attach_evidence(
        case_id: CasePath,
        request_body: Annotated[bytes, Depends(_raw_body)],
        principal: Caller,
        request: Request,
        name: Annotated[str | None, Query(max_length=200)] = None,
        text: Annotated[str, Query(max_length=4000)] = "",
    ) -> schemas.CaseWritten:
        """Upload an evidence file as the body; stored by its SHA-256, the hash chained. Its
        Content-Type is recorded; the body-size limit applies."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip()[:100]
        return svc().cases.attach(
            principal, case_id, request_body, name=name, media_type=media_type or None, text=text
        )

    @app.get(
        "/v1/cases/{case_id}/evidence/{sha256}",
        response_class=Response,
        responses={200: {"content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}}}},
        tags=["cases"],
    )
    def read_evidence(
        case_id: CasePath, sha256: Annotated[str, PathParam(max_length=64)], principal: Caller
    ) -> Response:
        """An evidence file of the case, checked against the hash in the chain (409 when it
        is missing or was modified). Always sent as a download."""
        data, media_type = svc().cases.evidence(principal, case_id, sha256)
        return Response(
            data,
            media_type=OCTETS,
            headers={
                "Content-Disposition": f'attachment; filename="{sha256}"',
                "X-Content-Type-Options": "nosniff",
                "Guardrail-Evidence-Media-Type": media_type,
            },
        )

    @app.post("/v1/cases/{case_id}/assign", response_model=schemas.CaseWritten, tags=["cases"])
    def assign_case(
        case_id: CasePath, body: schemas.CaseAssignRequest, principal: Caller
    ) -> schemas.CaseWritten:
        """Give the case to an officer."""
        return svc().cases.assign(principal, case_id, body)

    @app.post("/v1/cases/{case_id}/verdict", response_model=schemas.CaseWritten, tags=["cases"])
    def case_verdict(
        case_id: CasePath, body: schemas.CaseVerdictRequest, principal: Caller
    ) -> schemas.CaseWritten:
        """Record what was established, possibly long after (also on a closed case); rule
        precision in the reports uses it. ``unknown`` withdraws an earlier verdict."""
        return svc().cases.verdict(principal, case_id, body)

    @app.post("/v1/cases/{case_id}/amounts", response_model=schemas.CaseWritten, tags=["cases"])
    def case_amounts(
        case_id: CasePath, body: schemas.CaseAmountsRequest, principal: Caller
    ) -> schemas.CaseWritten:
        """Record money prevented or returned, or the police report, as it is learnt."""
        return svc().cases.amounts(principal, case_id, body)

    @app.post("/v1/cases/{case_id}/close", response_model=schemas.CaseWritten, tags=["cases"])
    def close_case(
        case_id: CasePath, body: schemas.CaseCloseRequest, principal: Caller
    ) -> schemas.CaseWritten:
        """Close the case with its resolution (409 when it is already closed)."""
        return svc().cases.close(principal, case_id, body)

    # -- reading -----------------------------------------------------------------------------
    @app.get("/v1/pack", response_model=schemas.PackInfo, tags=["reading"])
    def pack(principal: Caller) -> schemas.PackInfo:
        """The loaded rule pack: name, version, content hash, rules with titles."""
        return svc().pack_info(principal)

    @app.get("/v1/health/live", response_model=schemas.Health, tags=["health"])
    def live() -> schemas.Health:
        """The process answers (no key needed)."""
        return schemas.Health(status="ok")

    @app.get(
        "/v1/health/ready",
        response_model=schemas.Health,
        responses={503: {"model": schemas.Health}},
        tags=["health"],
    )
    def ready() -> Response:
        """Ready when the pack is loaded and every store answers (no key needed)."""
        checks = svc().readiness()
        ok = all(value == "ok" for value in checks.values())
        health = schemas.Health(status="ok" if ok else "unavailable", checks=checks)
        return Response(health.model_dump_json(), status_code=200 if ok else 503, media_type=JSON)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        tags=["health"],
    )
    def metrics(principal: Caller) -> PlainTextResponse:
        """Prometheus text of this worker process (any valid key)."""
        return PlainTextResponse(
            svc().metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    # -- keys --------------------------------------------------------------------------------
    @app.get("/v1/keys", response_model=list[schemas.KeyView], tags=["keys"])
    def list_keys(principal: Caller) -> list[schemas.KeyView]:
        """Every key (never the secret). Admins only."""
        _admin(principal, "list keys")
        return [schemas.KeyView(**vars(info)) for info in svc().stores.keys.list()]

    @app.post("/v1/keys", status_code=201, response_model=schemas.KeyCreated, tags=["keys"])
    def add_key(body: schemas.KeyRequest, principal: Caller) -> schemas.KeyCreated:
        """Create a key; the response is the only place the whole key appears. Admins only."""
        _admin(principal, "create keys")
        from guardrail.server.keys import ApiKeyError

        try:
            key = svc().stores.keys.add(body.name, Role(body.role))
        except ApiKeyError as error:
            raise invalid([("name", str(error))]) from None
        return schemas.KeyCreated(key_id=key.split("_")[1], name=body.name, role=body.role, key=key)

    @app.delete("/v1/keys/{key_id}", response_model=schemas.KeyView, tags=["keys"])
    def revoke_key(key_id: str, principal: Caller) -> schemas.KeyView:
        """Revoke a key at once, in every worker. Admins only."""
        _admin(principal, "revoke keys")
        from guardrail.server.keys import ApiKeyError

        try:
            return schemas.KeyView(**vars(svc().stores.keys.revoke(key_id)))
        except ApiKeyError as error:
            raise not_found(str(error)) from None

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return ASGIWithLimit(app, config.limits.max_body_bytes)


def authenticated(request: Request) -> Principal:
    """The caller's principal, from the ``Authorization: Bearer`` key (401/429 otherwise)."""
    service: Service = request.app.state.service()
    auth = Authenticator(service.stores.keys, request.app.state.limiter, service.metrics)
    client = request.client.host if request.client else "unknown"
    return auth.authenticate(
        request.headers.get("authorization"), client, f"{request.method} {request.url.path}"
    )


Caller = Annotated[Principal, Depends(authenticated)]


def _admin(principal: Principal, action: str) -> None:
    from guardrail.server.auth import require

    require(principal, Role.ADMIN, action=action)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= route.methods or set()
    return sorted(methods)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _validate(adapter: TypeAdapter[Any], body: Any) -> Any:
    from pydantic import ValidationError

    try:
        return adapter.validate_python(body)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            field = ".".join(str(part) for part in item["loc"]) or "(body)"
            message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append((field, message))
        raise invalid(problems) from None


def _event_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Event"}}},
        }
    }


_PROBLEM_STATUSES = {
    "400": "Malformed JSON",
    "401": "No key, or a wrong or revoked key",
    "403": "The key's role or holder may not do this",
    "404": "No such resource",
    "409": "Refused in the current state",
    "413": "Body too large",
    "422": "Invalid body: the fields are named",
    "429": "Too many failed authentications",
    "500": "Internal error (no details)",
    "503": "Not ready, or a store is unreachable",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    _, definitions = models_json_schema(
        [(Event, "validation"), (Problem, "validation"), (Decision, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions.get("$defs", {}))
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = {"$ref": "#/components/schemas/Problem"}
    public = {"/v1/health/live", "/v1/health/ready"}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in _PROBLEM_STATUSES.items():
                if path in public and status not in ("500", "503"):
                    continue
                if status == "503" and "503" in responses:
                    continue
                responses[status] = {
                    "description": description,
                    "content": {MEDIA_TYPE: {"schema": problem}},
                }
            if path not in public:
                operation["security"] = [{"bearer": []}]
    schema["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "grk_<id>_<secret>"}
    }
    app.openapi_schema = schema
    return schema


class ASGIWithLimit:
    """The FastAPI app behind the body-size limit; ``.app`` is the FastAPI instance."""

    def __init__(self, app: FastAPI, limit: int) -> None:
        self.app = app
        self._limited = BodyLimit(app, limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._limited(scope, receive, send)


def app_from_env() -> ASGIWithLimit:
    """The application for uvicorn workers: the config file named by $GUARDRAIL_SERVE_CONFIG."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    return create_app(load_config(path))
