"""JSON errors for the API: {"error": {"code", "message"}} with the right status."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """A JSON error answer naming what was wrong."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers or None)


class ApiError(Exception):
    """Raise from a view to answer with a JSON error; the error middleware renders it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message)


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(what: str = "artifact") -> ApiError:
    # Another user's id answers exactly like a missing one: never 403, never the data.
    return ApiError(404, "not_found", f"no such {what}")


def unauthenticated() -> ApiError:
    return ApiError(401, "unauthenticated", "sign in, or send an API token as 'Authorization: Bearer <token>'")


def forbidden(message: str, code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message)
