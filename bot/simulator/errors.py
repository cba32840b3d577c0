"""Errors raised by simulated Bot API methods.

Handlers raise :class:`ApiError` instead of building responses themselves so
that every failure leaves the server in exactly the JSON shape Telegram uses,
which is what the aiogram and python-telegram-bot clients parse into their own
exception types.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API failure that is reported to the client as ``{"ok": false, ...}``."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_payload(self) -> dict[str, Any]:
        """Return the response body Telegram would send for this error."""
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            payload["parameters"] = {"retry_after": self.retry_after}
        return payload


def bad_request(reason: str) -> ApiError:
    """Build a 400 error; Telegram prefixes every such description with ``Bad Request:``."""
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    """Build a 403 error, used when the user has blocked the bot."""
    return ApiError(403, f"Forbidden: {reason}")
