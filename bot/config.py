"""Settings read from ``GRIDBOT_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API_URL = "https://api.telegram.org"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDBOT_", env_file=".env", extra="ignore")

    token: SecretStr | None = None
    api_url: str = TELEGRAM_API_URL
    database_url: str = "sqlite+aiosqlite:///gridbot.db"
    engine: Literal["aiogram", "ptb"] = "aiogram"
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8081"

    # Messages per second for everything the bot sends on its own initiative (Telegram allows ~30/s).
    send_rate: float = Field(default=25.0, gt=0, le=1000)
    # Requests a resident may file per day; admins are exempt.
    daily_request_limit: int = Field(default=10, ge=1)
    playground_port: int = 8080

    @property
    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token else None

    @property
    def webhook_secret_value(self) -> str | None:
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None
