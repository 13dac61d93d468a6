"""Logging: plain text on a terminal, JSON lines when LOG_FORMAT=json, a request id on every line of a request."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable

from .redact import mask

from aiohttp.http_exceptions import HttpProcessingError

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage(), self.secrets),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info), self.secrets)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = mask(super().format(record), self.secrets)
        request_id = getattr(record, "request_id", None)
        return f"{text} [request {request_id}]" if request_id else text


def configure_logging(fmt: str = "text", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Route every log line to stderr in the chosen format (idempotent).

    Every line, traceback included, goes through :func:`portal_core.redact.mask`: URL passwords and
    secret-named parameters are masked, and so is each of ``secrets`` (the configuration's secret values).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python warnings (deprecations, unclosed resources) go through the same handler, so JSON logs stay JSON.
    logging.captureWarnings(True)
    # aiohttp's access log would double every request line; the metrics and our own lines cover it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class ClientErrorsAsWarnings(logging.LoggerAdapter):
    """aiohttp's server logger (``handler_args={"logger": ...}``), except that a request aiohttp's own parser
    refused as malformed (a 4xx: a bad request line, header or chunk) is a WARNING without a traceback, and a
    client that went away is INFO: neither is the portal's error. Everything else is logged as aiohttp does."""

    def exception(self, msg, *args, exc_info=True, **kwargs) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            detail = str(exc.message).strip().splitlines()[0][:300] if str(exc.message).strip() else type(exc).__name__
            self.warning(f"{msg}: refused malformed input ({exc.code}): %s", *args, detail, **kwargs)
        elif isinstance(exc, ConnectionResetError):
            self.info(f"{msg}: the client went away", *args, **kwargs)
        else:
            super().exception(msg, *args, exc_info=exc_info, **kwargs)
