"""The core's own settings, and :func:`load_config`, which reads and validates every section at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from . import backends
from .config import (ByteSize, ConfigError, ConfigProblem, ConfigSection, parse_bool, parse_size, read_section,
                     secret_values, setting)
from .redact import loggable_secrets, mask, secret_parts

DEFAULT_LIMITS = {
    "free": (100 * 1024**2, 1024**3),
    "pro": (5 * 1024**3, 100 * 1024**3),
}
# Share links and file requests per plan: (longest expiry in days, passwords allowed, file requests allowed).
DEFAULT_SHARING = {
    "free": (7, False, False),
    "pro": (90, True, True),
}


def _whole_days(raw: str) -> int:
    if not str(raw).strip().isdigit() or int(raw) < 1:
        raise ValueError(f"expected a whole number of days, 1 or more, got {raw!r}")
    return int(raw)


# PLAN_<NAME>_<RULE>: how each rule's value is read (a ValueError names what was expected).
_PLAN_RULES = {
    "max_file": parse_size,
    "quota": parse_size,
    "share_max_days": _whole_days,
    "share_passwords": parse_bool,
    "file_requests": parse_bool,
}


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http:// or https:// URL"
    if parts.path not in ("", "/") or parts.query:
        return "must be the site's root URL, with no path or query"
    return None


def _postgres_url(value: str) -> str | None:
    """A postgresql:// URL libpq can read; what is wrong is said with its secret parts masked."""
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    try:
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql"):
            return "must be a postgresql:// URL"
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
        parse_dsn(value)
    except (ValueError, ProgrammingError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"is not a URL PostgreSQL can use: {mask(detail, secret_parts(value))}"
    return None


def _one_of(*choices: str):
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number from 0 to 65535"


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than zero"


def _not_negative(value: int) -> str | None:
    return None if value >= 0 else "must be zero or more"


def _long_token(value: str) -> str | None:
    # A short token could be guessed by whoever can reach /metrics; `openssl rand -hex 32` makes a good one.
    return None if len(value) >= 16 else "must be at least 16 characters (e.g. openssl rand -hex 32)"


def _plan_rule(key: str) -> str | None:
    """The rule a PLAN_<NAME>_<RULE> key (lower case, without PLAN_) sets, or None."""
    return next((rule for rule in _PLAN_RULES if key.endswith("_" + rule) and len(key) > len(rule) + 1), None)


def _plan_limits(values: dict[str, str]) -> str | None:
    for key, raw in values.items():
        rule = _plan_rule(key)
        if rule is None:
            known = ", ".join(f"PLAN_<NAME>_{name.upper()}" for name in _PLAN_RULES)
            return f"PLAN_{key.upper()} is not a known plan setting ({known})"
        try:
            _PLAN_RULES[rule](raw)
        except ValueError as exc:
            return f"PLAN_{key.upper()}: {exc}"
    return None


@attrs.frozen
class Limits:
    """How much one plan may store: bytes per file and bytes in all."""

    max_file: int
    quota: int


@attrs.frozen
class SharingRules:
    """What one plan may do with share links and file requests (PLAN_<NAME>_SHARE_MAX_DAYS,
    PLAN_<NAME>_SHARE_PASSWORDS, PLAN_<NAME>_FILE_REQUESTS)."""

    share_max_days: int
    share_passwords: bool
    file_requests: bool


@attrs.frozen
class CoreSettings:
    """Settings the core itself needs, whichever plugins are selected."""

    dev_mode: bool = setting("DEV_MODE", default=False, hint="true on a laptop: stub auth, storage and billing")
    app_base_url: str = setting(
        "APP_BASE_URL", dev_default="http://127.0.0.1:8080", check=_http_url,
        hint="the public URL customers use, e.g. https://portal.example.com (OIDC callbacks and Stripe return here)")
    database_url: str | None = setting(
        "DATABASE_URL", dev_default=None, check=_postgres_url,
        hint="postgresql://user:password@host:5432/dbname (in DEV_MODE, leave unset for a throwaway local PostgreSQL)")
    host: str = setting("HOST", default="0.0.0.0", dev_default="127.0.0.1", hint="address to listen on")
    port: int = setting("PORT", default=8080, check=_port, hint="TCP port to listen on")
    data_dir: Path = setting("PORTAL_DATA_DIR", default=Path(".portal-data"),
                             hint="where DEV_MODE keeps uploaded files and its throwaway database")
    auth_backend: str = setting("AUTH_BACKEND", default="oidc", dev_default="dev", hint="which plugin signs people in")
    storage_backend: str = setting("STORAGE_BACKEND", default="r2", dev_default="dev", hint="which plugin stores artifacts")
    billing_backend: str = setting("BILLING_BACKEND", default="stripe", dev_default="dev", hint="which plugin takes payment")
    disable_plugins: tuple[str, ...] = setting("PORTAL_DISABLE_PLUGINS", default=(),
                                               hint="comma-separated plugin names to block")
    log_format: str = setting("LOG_FORMAT", default="text", check=_one_of("text", "json"), hint="text or json")
    log_level: str = setting("LOG_LEVEL", default="INFO", check=_one_of("DEBUG", "INFO", "WARNING", "ERROR"),
                             hint="DEBUG, INFO, WARNING or ERROR")
    session_idle_seconds: int = setting("SESSION_IDLE_SECONDS", default=12 * 3600, check=_positive,
                                        hint="a session unused this long ends")
    session_max_age_seconds: int = setting("SESSION_MAX_AGE_SECONDS", default=14 * 86400, check=_positive,
                                           hint="a session ends this long after sign-in, however active")
    database_connect_timeout: int = setting("DATABASE_CONNECT_TIMEOUT", default=30, check=_positive,
                                            hint="seconds to keep retrying the database at start before giving up")
    database_prepare_statements: bool = setting(
        "DATABASE_PREPARE_STATEMENTS", default=True,
        hint="false behind a pooler in transaction mode (PgBouncer), where server-side prepared statements break")
    shutdown_grace_seconds: int = setting("SHUTDOWN_GRACE_SECONDS", default=20, check=_positive,
                                          hint="seconds in-flight requests get to finish after SIGTERM")
    events_retention_days: int = setting("EVENTS_RETENTION_DAYS", default=400, check=_positive,
                                         hint="events (the audit trail) older than this many days are deleted")
    events_max_attempts: int = setting("EVENTS_MAX_ATTEMPTS", default=10, check=_positive,
                                       hint="failed deliveries of an event to a plugin before it is parked")
    events_retry_seconds: float = setting("EVENTS_RETRY_SECONDS", default=2.0, check=_positive,
                                          hint="first retry delay of a failed event delivery; doubles each time, up to 1 hour")
    events_handler_timeout: float = setting("EVENTS_HANDLER_TIMEOUT", default=30.0, check=_positive,
                                            hint="seconds a portal_event handler may take before it counts as failed")
    events_poll_seconds: float = setting(
        "EVENTS_POLL_SECONDS", default=5.0, check=_positive,
        hint="seconds between checks for due event deliveries; a committed event wakes delivery at once (NOTIFY)")
    trace_hooks: bool = setting("PORTAL_TRACE_HOOKS", default=False,
                                hint="true logs every hook call with its plugins, duration and outcome")
    shutdown_delay_seconds: int = setting(
        "SHUTDOWN_DELAY_SECONDS", default=0, check=_not_negative,
        hint="seconds to keep serving after SIGTERM while /health/ready answers 503, so load balancers stop "
             "sending new requests before the listener closes (Kubernetes: 5)")
    ops_token: str | None = setting(
        "OPS_TOKEN", default=None, secret=True, check=_long_token,
        hint="bearer token for operators: /metrics and the details of /health (unset: /metrics is closed)")
    direct_upload_expiry_seconds: int = setting(
        "DIRECT_UPLOAD_EXPIRY_SECONDS", default=24 * 3600, check=_positive,
        hint="a direct upload not completed this many seconds after it started is aborted and its reservation freed")
    direct_upload_url_seconds: int = setting(
        "DIRECT_UPLOAD_URL_SECONDS", default=900, check=_positive,
        hint="how long a presigned part URL of a direct upload stays valid (clients ask again when one expires)")
    direct_upload_threshold: ByteSize = setting(
        "DIRECT_UPLOAD_THRESHOLD", default=ByteSize(16 * 1024**2), check=_not_negative,
        hint="the browser sends files larger than this straight to storage in parallel parts; smaller ones "
             "through the portal (0: every file goes straight to storage)")
    http_header_timeout_seconds: float = setting(
        "HTTP_HEADER_TIMEOUT_SECONDS", default=60.0, check=_positive,
        hint="seconds a connection gets to send a complete request head; slower ones are closed (408)")
    http_body_idle_timeout_seconds: float = setting(
        "HTTP_BODY_IDLE_TIMEOUT_SECONDS", default=120.0, check=_positive,
        hint="seconds an upload's body may send nothing before the connection is cut (a slow upload that "
             "keeps moving is never cut)")
    plan_limits: dict[str, str] = setting("PLAN_", prefix=True, check=_plan_limits,
                                          hint="PLAN_<NAME>_MAX_FILE, _QUOTA, _SHARE_MAX_DAYS, _SHARE_PASSWORDS and "
                                               "_FILE_REQUESTS, e.g. PLAN_FREE_QUOTA=1GiB")

    @property
    def secure_cookies(self) -> bool:
        return self.app_base_url.startswith("https://")

    @property
    def base_url(self) -> str:
        """APP_BASE_URL without a trailing slash."""
        return self.app_base_url.rstrip("/")

    def limits(self, plan: str) -> Limits:
        """The limits of ``plan``: PLAN_<NAME>_* when set, else the built-in default (unknown plans get pro's)."""
        default_file, default_quota = DEFAULT_LIMITS.get(plan, DEFAULT_LIMITS["pro"])
        max_file = self.plan_limits.get(f"{plan}_max_file")
        quota = self.plan_limits.get(f"{plan}_quota")
        return Limits(parse_size(max_file) if max_file else default_file, parse_size(quota) if quota else default_quota)

    def sharing(self, plan: str) -> SharingRules:
        """The share-link and file-request rules of ``plan``: PLAN_<NAME>_* when set, else the built-in
        default (unknown plans get pro's)."""
        defaults = DEFAULT_SHARING.get(plan, DEFAULT_SHARING["pro"])
        values = []
        for rule, default in zip(("share_max_days", "share_passwords", "file_requests"), defaults):
            raw = self.plan_limits.get(f"{plan}_{rule}")
            values.append(default if raw is None else _PLAN_RULES[rule](raw))
        return SharingRules(*values)


@attrs.frozen
class Config:
    """Everything validated at start: the core's settings, every section's, and the chosen backends."""

    core: CoreSettings
    sections: Mapping[str, Any]
    selections: Mapping[str, backends.Selection]

    def secrets(self) -> tuple[str, ...]:
        """The values of every setting declared secret (see :func:`portal_core.config.secret_values`): logs mask them."""
        return loggable_secrets(secret for section in (self.core, *self.sections.values()) if section is not None
                                for secret in secret_values(section))

    def backend_settings(self, service: str) -> Any:
        return self.sections.get(f"{service}:{self.selections[service].backend.name}")


def load_config(env: Mapping[str, str], pm: Any) -> Config:
    """Read and validate the core's settings, every plugin section and the selected backends' sections.

    Raises :class:`ConfigError` listing every problem at once. Opens nothing and touches no database.
    """
    dev_probe, dev_problems = read_section(_DevProbe, env, dev_mode=False)
    dev_mode = bool(dev_probe and dev_probe.dev_mode)
    core, problems = read_section(CoreSettings, env, dev_mode=dev_mode)
    problems = [p for p in problems if p.variable != "DEV_MODE"] + dev_problems
    if core is not None and dev_mode and not env.get("APP_BASE_URL", "").strip():
        # On a laptop the public URL is wherever the portal listens.
        host = "127.0.0.1" if core.host in ("0.0.0.0", "::", "") else core.host
        core = attrs.evolve(core, app_base_url=f"http://{host}:{core.port}")
    sections: dict[str, Any] = {}
    selections, selection_problems = backends.select(pm, env, dev_mode)
    problems += selection_problems
    for selection in selections.values():
        if selection.backend.settings is not None:
            value, section_problems = read_section(selection.backend.settings, env, dev_mode=dev_mode)
            problems += section_problems
            sections[f"{selection.service}:{selection.backend.name}"] = value
    for group in pm.hook.portal_config_sections():
        for section in group or ():
            if not isinstance(section, ConfigSection):
                raise TypeError(f"portal_config_sections must return ConfigSection objects, got {section!r}")
            if section.name in sections:  # the later one would silently replace the other plugin's settings
                raise TypeError(f"two plugins contribute the config section {section.name!r}; each plugin needs "
                                "a section name of its own")
            value, section_problems = read_section(section.settings, env, dev_mode=dev_mode)
            problems += section_problems
            sections[section.name] = value
    if problems:
        raise ConfigError(_unique(problems), dev_mode=dev_mode)
    return Config(core=core, sections=sections, selections=selections)


@attrs.frozen
class _DevProbe:
    dev_mode: bool = setting("DEV_MODE", default=False, hint="true or false")


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[str] = set()
    result = []
    for problem in problems:
        if problem.variable not in seen:
            seen.add(problem.variable)
            result.append(problem)
    return result
