"""Keeping secrets out of log lines, whichever library writes them.

HTTP clients log the URLs they call, and a Bot API URL carries the bot's token (``/bot<TOKEN>/getMe``);
WeChat's carry ``access_token=``. ``protect_logs`` puts a filter on every handler of the root logger that
rewrites each record with the configured secrets and anything shaped like a token replaced, and turns the
chatty HTTP client loggers down to warnings.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from bot.config import Settings

HIDDEN = "<redacted>"
# A bot token in a Bot API URL, and query parameters that carry credentials.
_TOKEN_PATTERNS = (
    (re.compile(r"bot\d+:[A-Za-z0-9_-]+"), f"bot{HIDDEN}"),
    (re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}"), HIDDEN),
    (re.compile(r"((?:access_token|secret|appsecret|secret_token|api_key)=)[^&\s\"']+", re.IGNORECASE), rf"\1{HIDDEN}"),
)
# Loggers that write one line per HTTP request, URL included.
CHATTY_LOGGERS = ("httpx", "httpcore")

_secrets: set[str] = set()


def redact(text: str) -> str:
    """``text`` with every known secret and every token-shaped string replaced."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    for pattern, replacement in _TOKEN_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretRedactor(logging.Filter):
    """Rewrites a record's message (arguments merged in) and traceback without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configured_secrets(settings: Settings) -> set[str]:
    values = (
        settings.token, settings.webhook_secret, settings.wechat_token, settings.wechat_app_secret,
        settings.wechat_aes_key,
    )
    found = {value.get_secret_value() for value in values if value is not None and value.get_secret_value()}
    password = make_url(settings.database_url).password
    if password:
        found.add(str(password))
    return found


def protect_logs(settings: Settings) -> None:
    """Redact ``settings``' secrets on every root handler (again for handlers added since the last call)."""
    _secrets.update(configured_secrets(settings))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, SecretRedactor) for existing in handler.filters):
            handler.addFilter(SecretRedactor())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class QueryFreeAccessLogger(AbstractAccessLogger):
    """The access log without query strings: a signed query (WeChat's) could be replayed and a key (an Open311
    partner's ``api_key``) used by whoever reads it."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs', request.remote, request.method, request.path, response.status, time
        )
