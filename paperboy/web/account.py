"""Sign up, sign in, sign out and the settings page (password, API tokens, deleting the account).

Sign-in limits and device cookies: `login`; sign-up by mail and the first account's setup code: `signup`.

Every POST here passes the router's CSRF check first. A form with a mistake comes back with status 400, the
message beside the field and what was typed (never the password); nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy import accounts
from paperboy.accounts import NewToken
from paperboy.community import account_tokens
from paperboy.db import write
from paperboy.errors import FieldInvalid, Forbidden, InvalidInput, RateLimited
from paperboy.models import User
from paperboy.store import subscriptions as subscription_store
from paperboy.store import users as store
from paperboy.web import deps, schemas, security
from paperboy.web.deps import Pages, Site, Viewer
from paperboy.web.security import Limiter
from paperboy.web.subscriptions import mail_queued

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
#
# Two ways, by PAPERBOY_SIGNUP_VERIFY_EMAIL (app.state.signup_verify_email). Off: the form makes the account
# and signs in at once, and says so when the email address has an account (without a mailbox check there is
# no other answer to give: the trade-off in docs/community.md). On: the form takes a name and an address and
# answers the same page whoever the address is; the address gets a link that makes the account (a signed
# token: nothing is stored before it is opened), or, when it has an account, a mail telling its owner so.
#
# While the hub has no member and `paperboy serve` made a setup code (it listens where others can reach
# it), the first sign-up, which makes the admin, must carry that code.


def _signup_page(
    request: Request,
    conn: Connection,
    templates: Pages,
    site: Site,
    now: datetime,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    next: str,
    status: int = 200,
) -> HTMLResponse:
    return _page(
        templates,
        "pages/signup.html",
        site,
        now,
        status=status,
        title="Sign up",
        state="form",
        form=form,
        errors=errors,
        next=next,
        verify=request.app.state.signup_verify_email,
        setup=accounts.needs_setup_code(conn, request.app.state.setup_code),
    )


def _remember_device(response: Response, request: Request, site: Site, user: User) -> None:
    """The device cookie (OWASP "device cookies", community/account_tokens.py): this browser signed in to
    `user`, so while others guess the password it still may. Only /login reads it; sign-out keeps it."""
    value = account_tokens.remember_device(
        request.app.state.secret_key, request.cookies.get(account_tokens.DEVICE_COOKIE), user
    )
    response.set_cookie(
        account_tokens.DEVICE_COOKIE,
        value,
        max_age=account_tokens.DEVICE_DAYS * 24 * 3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=security.is_https(request, site.public_url),
    )


@router.get("/signup")
def signup_form(
    request: Request,
    next: str = "",
    who: Viewer = Depends(deps.viewer),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    if who.user is not None:
        return RedirectResponse(target, status_code=303)
    form = {"username": "", "email": ""}
    return _signup_page(request, conn, templates, site, now, form=form, errors={}, next=target)


@router.post("/signup")
def signup(
    request: Request,
    username: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    setup_code: str = Form("", max_length=200),
    next: str = Form(""),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    target = security.safe_next(next)
    limiter.hit("signup", ["ip:" + security.client_ip(request)])
    if request.app.state.signup_verify_email:
        return _signup_by_mail(
            request, username, email, setup_code, target, conn, limiter, templates, site, now
        )
    try:
        account = accounts.new_account(hasher, username=username, email=email, password=password)
        with write(conn):
            user = accounts.register(
                conn, account, now, setup_code=request.app.state.setup_code, sent_code=setup_code
            )
            token = accounts.start_session(conn, user, now)
    except FieldInvalid as exc:
        form = {"username": username[:40], "email": email[:254]}
        status = 403 if isinstance(exc, accounts.SetupCodeWrong) else 400
        errors = {exc.field: str(exc)}
        return _signup_page(
            request, conn, templates, site, now, form=form, errors=errors, next=target, status=status
        )
    response = _signed_in(request, site, token, target)
    _remember_device(response, request, site, user)
    return response


def _signup_by_mail(
    request: Request,
    username: str,
    email: str,
    setup_code: str,
    target: str,
    conn: Connection,
    limiter: Limiter,
    templates: Pages,
    site: Site,
    now: datetime,
) -> Response:
    """PAPERBOY_SIGNUP_VERIFY_EMAIL: one mail to the address (a link that makes the account, or a note that
    it has one), and the same page whichever it was. A taken username may still be said: profiles show
    every username anyway."""
    key: bytes = request.app.state.secret_key
    try:
        name, address = accounts.clean_username(username), accounts.clean_email(email)
        if store.username_taken(conn, name):
            raise FieldInvalid("username", f"The username {name!r} is taken.")
        code_checked = accounts.needs_setup_code(conn, request.app.state.setup_code)
        if code_checked:
            accounts.check_setup_code(request.app.state.setup_code, setup_code)
    except FieldInvalid as exc:
        form = {"username": username[:40], "email": email[:254]}
        status = 403 if isinstance(exc, accounts.SetupCodeWrong) else 400
        errors = {exc.field: str(exc)}
        return _signup_page(
            request, conn, templates, site, now, form=form, errors=errors, next=target, status=status
        )
    taken = store.email_taken(conn, address)
    link = account_tokens.SignupLink(name, address, code_checked)
    url = account_tokens.signup_url(site.public_url, account_tokens.signup_token(key, link, now))
    try:  # at most a few such mails per address: past that nothing is sent, and the page is the same
        limiter.hit("signup_mail", ["email:" + address])
        with write(conn):
            account_tokens.mail_signup(
                conn,
                templates.env,
                site_name=site.name,
                public_url=site.public_url,
                email=address,
                link=None if taken else url,
                now=now,
            )
    except RateLimited:
        pass
    mail_queued(request)
    window = limiter.window("signup_mail")
    return _page(
        templates,
        "pages/signup.html",
        site,
        now,
        title="Check your inbox",
        state="sent",
        email=address,
        hours=account_tokens.SIGNUP_LINK_HOURS,
        max_mails=window[0],
        window_hours=window[1],
        form={},
        errors={},
        next=target,
    )


@router.get("/signup/confirm")
def signup_confirm_form(
    request: Request,
    t: str = Query("", max_length=1000),
    who: Viewer = Depends(deps.viewer),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    """The page a sign-up link opens: choose a password (and keep or change the name) to make the account."""
    link = account_tokens.signup_link(request.app.state.secret_key, t, now)
    if store.email_taken(conn, link.email):
        raise InvalidInput("This address has an account already (this link was used?): sign in instead.")
    page = _page(
        templates,
        "pages/signup_confirm.html",
        site,
        now,
        title="Create your account",
        token=t,
        email=link.email,
        form={"username": link.username},
        errors={},
    )
    page.headers["Cache-Control"] = "no-store"  # it holds the link's token
    return page


@router.post("/signup/confirm")
def signup_confirm(
    request: Request,
    t: str = Form("", max_length=1000),
    username: str = Form(""),
    password: str = Form(""),
    conn: Connection = Depends(deps.conn),
    hasher: PasswordHasher = Depends(deps.hasher),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    link = account_tokens.signup_link(request.app.state.secret_key, t, now)
    try:
        account = accounts.new_account(hasher, username=username, email=link.email, password=password)
        with write(conn):
            user = accounts.register(
                conn,
                account,
                now,
                setup_code=request.app.state.setup_code,
                code_checked=link.code_checked,
            )
            token = accounts.start_session(conn, user, now)
    except FieldInvalid as exc:
        if exc.field == "email":  # made already (this link, opened twice)
            raise InvalidInput("This address has an account already: sign in instead.") from exc
        if isinstance(exc, accounts.SetupCodeWrong):
            raise Forbidden(f"{exc} Sign up again and give it.") from exc
        return _page(
            templates,
            "pages/signup_confirm.html",
            site,
            now,
            status=400,
            title="Create your account",
            token=t,
            email=link.email,
            form={"username": username[:40]},
            errors={exc.field: str(exc)},
        )
    response = _signed_in(request, site, token, "/papers")
    _remember_device(response, request, site, user)
    return response


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
    """Sign in. Limits, all 429 with Retry-After when spent (docs/community.md, "Sign-in limits"): attempts
    per address; failures per account (its name and its email are one account) from browsers without a
    device cookie for it; failures per device cookie. The owner's browser, which signed in before, has its
    own count, so guessers spending the account's do not lock the owner out. A failure's slot is taken
    before the password is checked, so tries sent at the same moment never check more than the limit."""
    target = security.safe_next(next)
    limiter.hit("signin", ["ip:" + security.client_ip(request)])
    found = accounts.find_login(conn, username)
    device = None
    if found.user is not None:
        cookie = request.cookies.get(account_tokens.DEVICE_COOKIE)
        device = account_tokens.device_nonce(request.app.state.secret_key, cookie, found.user)
    bucket = f"device:{device}" if device is not None else found.key
    limiter.reserve("signin", bucket)
    # The password check (argon2) runs before the write transaction, not while holding the write lock.
    user = accounts.check_login(conn, hasher, found, password)
    if user is None:  # a failure: its slot stays taken
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
    limiter.refund("signin", bucket)
    with write(conn):
        # A new session id at every sign-in (no fixation); the session this browser had ends.
        accounts.end_session(conn, request.cookies.get(security.SESSION_COOKIE))
        token = accounts.start_session(conn, user, now)
    response = _signed_in(request, site, token, target)
    _remember_device(response, request, site, user)
    return response


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


def _reauth_key(user: User) -> str:
    return f"password-check:{user.id}"


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
    # Guessing the current password from a session (left open, stolen) is guessing a sign-in: failures count
    # per account, apart from the sign-in form's (guessers there must not stop the owner changing it).
    limiter.reserve("signin", _reauth_key(user))
    try:
        with write(conn):
            accounts.change_password(conn, hasher, user, current_password, new_password, who.session)
    except FieldInvalid as exc:
        if exc.field != "current_password":  # the right password, a new one refused: not a guess
            limiter.refund("signin", _reauth_key(user))
        field = "new_password" if exc.field == "password" else exc.field
        return settings_page(templates, conn, user, site, now, status=400, errors={field: str(exc)})
    limiter.refund("signin", _reauth_key(user))
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
    limiter.reserve("signin", _reauth_key(user))  # a wrong password counts as change_password's do
    try:
        with write(conn):
            accounts.delete_account(conn, hasher, user, password, now)
    except FieldInvalid as exc:
        return settings_page(templates, conn, user, site, now, status=400, errors={exc.field: str(exc)})
    response = RedirectResponse("/papers", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response
