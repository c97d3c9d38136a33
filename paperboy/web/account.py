"""Sign up, sign in, sign out and the settings page (password, API tokens, deleting the account).

Every POST here passes the router's CSRF check first. A form with a mistake comes back with status 400, the
message beside the field and what was typed (never the password); nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy import accounts
from paperboy.accounts import NewToken
from paperboy.db import write
from paperboy.errors import FieldInvalid
from paperboy.models import User
from paperboy.store import subscriptions as subscription_store
from paperboy.store import users as store
from paperboy.web import deps, schemas, security
from paperboy.web.deps import Pages, Site, Viewer
from paperboy.web.security import Limiter

router = APIRouter(
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(deps.require_csrf)],
)


def set_session_cookie(response: Response, request: Request, site: Site, token: str) -> None:
    response.set_cookie(
        security.SESSION_COOKIE,
        token,
        max_age=accounts.SESSION_DAYS * 24 * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=security.is_https(request, site.public_url),
    )


def _page(
    templates: Pages, name: str, site: Site, now: datetime, status: int = 200, **context: Any
) -> HTMLResponse:
    html = templates.render(name, site=site, today=now.date(), q="", **context)
    return HTMLResponse(html, status_code=status)


def _signed_in(request: Request, site: Site, token: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, site, token)
    response.delete_cookie(security.ANON_COOKIE, path="/")
    return response


# --- sign up ------------------------------------------------------------------------------------------------


@router.get("/signup")
def signup_form(
    next: str = "",
    who: Viewer = Depends(deps.viewer),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    if who.user is not None:
        return RedirectResponse(target, status_code=303)
    form = {"username": "", "email": ""}
    return _page(
        templates, "pages/signup.html", site, now, title="Sign up", form=form, errors={}, next=target
    )


@router.post("/signup")
def signup(
    request: Request,
    username: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    limiter.hit("signup", [security.client_ip(request)])
    try:
        account = accounts.new_account(hasher, username=username, email=email, password=password)
        with write(conn):
            user = accounts.add_account(conn, account, now)
            token = accounts.start_session(conn, user, now)
    except FieldInvalid as exc:
        form = {"username": username[:40], "email": email[:254]}
        return _page(
            templates,
            "pages/signup.html",
            site,
            now,
            status=400,
            title="Sign up",
            form=form,
            errors={exc.field: str(exc)},
            next=target,
        )
    return _signed_in(request, site, token, target)


# --- sign in / out ------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(
    next: str = "",
    who: Viewer = Depends(deps.viewer),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    if who.user is not None:
        return RedirectResponse(target, status_code=303)
    return _page(
        templates,
        "pages/login.html",
        site,
        now,
        title="Sign in",
        form={"username": ""},
        errors={},
        next=target,
    )


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    login_key = username.strip().lower()[:254]
    limiter.hit("signin", ["ip:" + security.client_ip(request), "account:" + login_key if login_key else ""])
    # The password check (argon2) runs before the write transaction, not while holding the write lock.
    user = accounts.authenticate(conn, hasher, username, password)
    if user is not None:
        with write(conn):
            # A new session id at every sign-in (no fixation); the session this browser had ends.
            accounts.end_session(conn, request.cookies.get(security.SESSION_COOKIE))
            token = accounts.start_session(conn, user, now)
    if user is None:
        return _page(
            templates,
            "pages/login.html",
            site,
            now,
            status=400,
            title="Sign in",
            form={"username": username[:254]},
            errors={"": "Wrong username or password (or the account is disabled)."},
            next=target,
        )
    return _signed_in(request, site, token, target)


@router.post("/logout")
def logout(who: deps.Viewer = Depends(deps.viewer), conn: Connection = Depends(deps.conn)) -> Response:
    with write(conn):
        accounts.end_session(conn, who.session)  # None when a token, not the cookie, is who asks
    response = RedirectResponse("/papers", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


# --- settings -----------------------------------------------------------------------------------------------


def settings_page(
    templates: Pages,
    conn: Connection,
    user: User,
    site: Site,
    now: datetime,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    notice: str = "",
    new_token: NewToken | None = None,
) -> HTMLResponse:
    tokens = store.list_tokens(conn, user.id)
    subscription = subscription_store.get_by_user(conn, user.id)  # the digest this account manages
    return _page(
        templates,
        "pages/settings.html",
        site,
        now,
        status=status,
        title="Settings",
        user=user,
        tokens=tokens,
        errors=errors or {},
        notice=notice,
        new_token=new_token,
        subscription=subscription,
    )


@router.get("/settings")
def settings(
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    return settings_page(templates, conn, user, site, now)


@router.post("/settings/password")
def change_password(
    current_password: str = Form(""),
    new_password: str = Form(""),
    who: Viewer = Depends(deps.viewer),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    limiter.hit("signin", ["account:" + user.username.lower()])  # guessing the current password is a sign-in
    try:
        with write(conn):
            accounts.change_password(conn, hasher, user, current_password, new_password, who.session)
    except FieldInvalid as exc:
        field = "new_password" if exc.field == "password" else exc.field
        return settings_page(templates, conn, user, site, now, status=400, errors={field: str(exc)})
    return settings_page(
        templates, conn, user, site, now, notice="Password changed. Your other sessions have ended."
    )


@router.post("/settings/tokens")
def create_token(
    name: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    try:
        with write(conn):
            made = accounts.create_token(conn, user, name, now)
    except FieldInvalid as exc:
        return settings_page(templates, conn, user, site, now, status=400, errors={exc.field: str(exc)})
    return settings_page(templates, conn, user, site, now, new_token=made)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(
    token_id: schemas.RowId,
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
) -> Response:
    with write(conn):
        accounts.revoke_token(conn, user, token_id)
    return RedirectResponse("/settings#tokens", status_code=303)


@router.post("/settings/delete")
def delete_account(
    request: Request,
    password: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    limiter.hit("signin", ["account:" + user.username.lower()])
    try:
        with write(conn):
            accounts.delete_account(conn, hasher, user, password, now)
    except FieldInvalid as exc:
        return settings_page(templates, conn, user, site, now, status=400, errors={exc.field: str(exc)})
    response = RedirectResponse("/papers", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response
