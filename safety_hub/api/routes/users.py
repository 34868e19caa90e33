"""Who am I (the caller's user, role and scope), and the user list for admins."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from safety_hub.api.auth import ADMIN_USER, Role
from safety_hub.api.deps import AUTH_RESPONSES, AdminDep, AuthenticatorDep, PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["access"], responses=AUTH_RESPONSES)


class MeOut(BaseModel):
    user: str = Field(description="the name the alarm journal records for this user's actions")
    role: Role
    enterprise: str | None = Field(description="the one enterprise this user sees; null: all")


class UserOut(MeOut):
    source: str = Field(description="admin token, local token or users file")


@router.get("/me", response_model=MeOut, summary="The caller: user, role and enterprise scope")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(user=principal.user, role=principal.role, enterprise=principal.enterprise)


@router.get("/users", response_model=list[UserOut], summary="Every user (admin only; no tokens)")
def users(auth: AuthenticatorDep, principal: AdminDep) -> list[UserOut]:
    out = []
    if auth.has_admin_token:
        out.append(UserOut(user=ADMIN_USER, role=Role.ADMIN, enterprise=None, source="admin token"))
    elif auth.local_token:
        out.append(UserOut(user=ADMIN_USER, role=Role.ADMIN, enterprise=None, source="local token"))
    out.extend(
        UserOut(user=u.name, role=u.role, enterprise=u.enterprise, source="users file")
        for u in auth.users()
    )
    return out
