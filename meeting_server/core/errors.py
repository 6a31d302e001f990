"""One small exception family, serialised the same way in HTTP errors and in acks."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, status: int | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


class Invalid(AppError):
    status, code = 400, "invalid"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class TooLarge(AppError):
    status, code = 413, "too_large"


class Unsupported(AppError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(AppError):
    status, code = 422, "unprocessable"


class RateLimited(AppError):
    status, code = 429, "rate_limited"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return AppError(message, code=code, **details).to_dict()
