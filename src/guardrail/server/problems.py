"""Errors as ``application/problem+json`` (RFC 9457): a type, a title, a status, a detail that
names the problem, and for invalid input the fields. Nothing else ever reaches a client: no
stack trace, no internal path, no exception text from inside the server."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guardrail.errors import GuardrailError

MEDIA_TYPE = "application/problem+json"
_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
TYPE_BASE = "https://guardrail.dev/problems/"


class FieldProblem(BaseModel):
    """One wrong field: its path in the request body (dotted) and what is wrong."""

    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class ProblemError(GuardrailError):
    """Raised by the service to answer with a problem; ``slug`` becomes the problem type."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, instance: str | None = None) -> bytes:
        problem = Problem(
            type=TYPE_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=[FieldProblem(field=f, message=m) for f, m in self.errors],
        )
        return problem.model_dump_json(exclude_none=True).encode("utf-8")


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="guardrail"'},
    )


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Forbidden", detail)


def not_found(detail: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", detail)


def invalid(
    errors: list[tuple[str, str]], detail: str = "the request body is invalid"
) -> ProblemError:
    named = "; ".join(f"{f}: {m}" for f, m in errors[:5])
    return ProblemError(
        422, "invalid-body", "Invalid request body", f"{detail}: {named}", errors=errors
    )


def malformed_json(detail: str) -> ProblemError:
    return ProblemError(400, "malformed-json", "Malformed JSON", detail)


def too_large(limit: int) -> ProblemError:
    return ProblemError(
        413, "body-too-large", "Request body too large", f"the body is larger than {limit} bytes"
    )


def internal(reference: str) -> ProblemError:
    return ProblemError(
        500,
        "internal-error",
        "Internal error",
        f"the request could not be completed; the server log has the details under {reference}",
    )


def unavailable(detail: str) -> ProblemError:
    return ProblemError(503, "unavailable", "Service unavailable", detail)


def loads_object(body: bytes, what: str = "body") -> dict[str, Any]:
    """Parse a JSON object from a request body or raise a 400 naming line and column."""
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise malformed_json(f"the {what} is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise malformed_json(
            f"the {what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        raise invalid([("(body)", f"expected a JSON object, got {kind}")])
    return value
