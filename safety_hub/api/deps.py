"""FastAPI dependencies: the hub, the caller (bearer token), role checks, scope, rate limit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from safety_hub.api.auth import Authenticator, Principal, RateLimiter, Role, retry_after_header
from safety_hub.hub import Hub

_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <token>`; tokens from SAFETY_HUB_ADMIN_TOKEN, the "
    "users file, or the local-mode token the hub prints",
)
_query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="the bearer token as a query parameter, for EventSource (stream only)",
)


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` is a sentence naming the problem, or (for input that
    does not fit the declared types) FastAPI's list of ``{loc, msg, type}`` items."""

    detail: str | list[dict[str, Any]] = Field(description="what is wrong")


def error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorOut}


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("no token, or a token nobody has"),
    403: error("the role or the enterprise scope does not allow it"),
    422: error("bad input: a parameter or body field, or an unknown query parameter, named"),
}


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def _authenticate(request: Request, token: str | None) -> Principal:
    auth: Authenticator = request.app.state.auth
    if not token:
        raise HTTPException(
            401,
            "authentication required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = auth.authenticate(token)
    if principal is None:
        raise HTTPException(
            401,
            "invalid token: no user has this token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.principal = principal
    return principal


def _query_names(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    """(path, METHOD) -> the query parameters the OpenAPI document declares for it (with the
    security schemes that travel in the query)."""
    cached: dict[tuple[str, str], frozenset[str]] | None = getattr(app.state, "query_names", None)
    if cached is not None:
        return cached
    doc = app.openapi()
    schemes = doc.get("components", {}).get("securitySchemes", {})
    in_query = {k: v["name"] for k, v in schemes.items() if v.get("in") == "query"}
    out = {}
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            for requirement in op.get("security", []):
                names.update(in_query[k] for k in requirement if k in in_query)
            out[(path, method.upper())] = frozenset(names)
    app.state.query_names = out
    return out


def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a typo (``?enterprize=``) must not
    silently widen an answer."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    method = "GET" if request.method == "HEAD" else request.method
    allowed = _query_names(request.app).get((path, method)) if path else None
    if allowed is None:
        return
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise HTTPException(
            422,
            f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
            f"{method} {path} takes: {takes}",
        )


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = _authenticate(request, credentials.credentials if credentials else None)
    reject_unknown_query(request)
    return principal


def get_stream_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[str | None, Depends(_query_token)],
) -> Principal:
    token = credentials.credentials if credentials else access_token
    principal = _authenticate(request, token)
    reject_unknown_query(request)
    return principal


def require_operator(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """An operator or admin, within the action rate limit (429 with Retry-After past it)."""
    if not principal.can(Role.OPERATOR):
        raise HTTPException(
            403, f"user {principal.user!r} is a {principal.role.value}: actions need an operator"
        )
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.take(principal.user)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many actions by {principal.user!r}: at most {limiter.burst:g} at once and "
            f"{limiter.per_s * 60:g} a minute; retry in {wait:.1f} s",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return principal


def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.can(Role.ADMIN):
        raise HTTPException(
            403, f"user {principal.user!r} is a {principal.role.value}: needs admin"
        )
    return principal


def require_park_wide(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.enterprise is not None:
        raise HTTPException(
            403,
            f"user {principal.user!r} is scoped to enterprise {principal.enterprise!r}: "
            "this view covers the whole park",
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(get_stream_principal)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
AdminDep = Annotated[Principal, Depends(require_admin)]
ParkWideDep = Annotated[Principal, Depends(require_park_wide)]


def scoped_enterprise(principal: Principal, enterprise: str | None) -> str | None:
    """The enterprise filter a request may use: its own for a scoped user (403 for another)."""
    if principal.enterprise is None:
        return enterprise
    if enterprise is not None and enterprise != principal.enterprise:
        raise HTTPException(
            403,
            f"user {principal.user!r} is scoped to enterprise {principal.enterprise!r}, "
            f"not {enterprise!r}",
        )
    return principal.enterprise


def check_enterprise(principal: Principal, enterprise: str) -> None:
    """403 when the path names an enterprise the user may not see."""
    scoped_enterprise(principal, enterprise)
