"""Settings read from ``GRIDBOT_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import re
import secrets
from datetime import time
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.categories import PROPERTY_CATEGORY_CODES
from bot.core.meetings import MeetingDefaults
from bot.core.workdays import SESSION_KEY, WorkingTime
from storage.database import Database

TELEGRAM_API_URL = "https://api.telegram.org"
WECHAT_API_URL = "https://api.weixin.qq.com"
WEBHOOK_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_SECRET_MISSING = (
    "GRIDBOT_WEBHOOK_URL is set but GRIDBOT_WEBHOOK_SECRET is not, so anyone who finds the URL could post "
    "updates in any person's name. Set GRIDBOT_WEBHOOK_SECRET to 1-256 characters of A-Z a-z 0-9 _ - (the "
    "same value on every worker), for example a new random one:  GRIDBOT_WEBHOOK_SECRET={example}"
)


class Settings(BaseSettings):
    # Errors never echo the input: it holds the token.
    model_config = SettingsConfigDict(env_prefix="GRIDBOT_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    token: SecretStr | None = None
    api_url: str = TELEGRAM_API_URL
    database_url: str = "sqlite+aiosqlite:///gridbot.db"
    # Connections each process keeps to PostgreSQL (unused on SQLite); size it to the updates handled at once.
    database_pool_size: int = Field(default=20, ge=1, le=500)
    engine: Literal["aiogram", "ptb"] = "aiogram"
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8081"
    # host:port of /healthz, /readyz and /metrics when polling (a webhook server serves them itself); off when unset.
    metrics_listen: str | None = None
    # Whether this process runs the scheduler's loop; with several workers one is enough (see docs/deploy.md).
    scheduler: Literal["on", "off"] = "on"

    # Messages per second for everything the bot sends on its own initiative (Telegram allows ~30/s).
    send_rate: float = Field(default=25.0, gt=0, le=1000)
    # Requests a resident may file per day; admins are exempt.
    daily_request_limit: int = Field(default=10, ge=1)
    # Requests one Open311 partner key may file in 24 hours: a partner files for many people, but a runaway
    # client must not flood the grid workers' chats.
    open311_daily_limit: int = Field(default=500, ge=1)
    # Visits each grid worker is to make per day, for grids whose community set no target.
    visit_target: int = Field(default=8, ge=1, le=100)
    # Local time the night window ends: a patrol still open then is closed by the scheduler.
    night_end: time = time(6, 0)
    # A resident sending more than this many updates within throttle_seconds is held back (0 turns it off).
    # Room for a ten-photo album, which arrives as ten updates at once.
    throttle_messages: int = Field(default=15, ge=0)
    throttle_seconds: float = Field(default=3.0, gt=0)
    playground_port: int = 8080
    # The playground's own database, never the deployment's: it loads demo data and makes made-up people staff.
    playground_database_url: str = "sqlite+aiosqlite:///playground.db"

    # Residents get no messages between these local times; what the scheduler sends then waits for the end.
    quiet_hours_start: time = time(22, 0)
    quiet_hours_end: time = time(8, 0)
    # Local time of the daily digest, the weekly feedback (Mondays) and the monthly bulletin (the 1st).
    digest_time: time = time(9, 0)
    # Handled updates (what people sent, with their names) and sent or failed outgoing messages are deleted
    # after this many days; the scheduler prunes them daily. Requests are kept, see docs/privacy.md.
    retention_days: int = Field(default=30, ge=1)
    # The weekly three-party meeting of a community that set no time of its own: weekday (0 Monday … 6 Sunday)
    # and local time; its agenda lists open requests of these category codes (comma-separated).
    meeting_weekday: int = Field(default=3, ge=0, le=6)
    meeting_time: time = time(15, 0)
    meeting_categories: str = ",".join(PROPERTY_CATEGORY_CODES)

    # Office hours in which the reminder and escalation hours are counted, on working days only (official
    # holidays, 调休 make-up days and the district's calendar file); ``always`` counts calendar time instead.
    office_hours: str = "08:30-12:00,14:30-17:30"
    # The residents' satisfaction (share of 4 and 5 stars) the desk's overview holds each area to.
    satisfaction_target: float = Field(default=0.85, gt=0, le=1)

    # WeChat Official Account (公众号): served when the token, app id and secret are set.
    wechat_token: SecretStr | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    # The EncodingAESKey (43 characters) of the encrypted "safe mode"; plain mode when unset.
    wechat_aes_key: SecretStr | None = None
    wechat_api_url: str = WECHAT_API_URL
    # host:port of the server WeChat calls; the callback path is /wechat.
    wechat_listen: str = "127.0.0.1:8082"
    # The template for messages outside the customer-service window, and its field names in the order
    # title, body, time, remark (an empty name leaves that part out).
    wechat_template_id: str | None = None
    wechat_template_fields: str = "first,keyword1,keyword2,remark"

    # The desk, the district center's web view (``gridbot desk``; ``gridbot run`` serves it too when
    # desk_listen is set): host:port it listens on, and the public base URL its sign-in links name.
    desk_listen: str | None = None
    desk_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+(/\S*)?$")

    @model_validator(mode="after")
    def webhook_is_signed(self) -> Settings:
        """A webhook without a secret would take updates from anyone who finds its URL."""
        if self.webhook_url and not self.webhook_secret_value:
            raise ValueError(WEBHOOK_SECRET_MISSING.format(example=secrets.token_urlsafe(32)))
        if self.webhook_secret_value is not None and not WEBHOOK_SECRET_SHAPE.fullmatch(self.webhook_secret_value):
            # Telegram's setWebhook refuses any other secret; the value itself is not repeated here.
            raise ValueError("GRIDBOT_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        WorkingTime.parse(self.office_hours, self.timezone)
        return self

    @property
    def working_time(self) -> WorkingTime:
        return WorkingTime.parse(self.office_hours, self.timezone)

    def database(self) -> Database:
        """The deployment's database, whose sessions know its office hours."""
        return Database(self.database_url, {SESSION_KEY: self.working_time}, self.database_pool_size)

    @property
    def desk_base_url(self) -> str | None:
        """The address the desk's sign-in links start with: GRIDBOT_DESK_URL, else the address it listens on."""
        if self.desk_url:
            return self.desk_url
        return f"http://{self.desk_listen}" if self.desk_listen else None

    @property
    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token else None

    @property
    def webhook_secret_value(self) -> str | None:
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_token and self.wechat_app_id and self.wechat_app_secret)


def meeting_defaults(settings: Settings) -> MeetingDefaults:
    codes = tuple(code.strip() for code in settings.meeting_categories.split(",") if code.strip())
    return MeetingDefaults(settings.meeting_weekday, settings.meeting_time, codes, settings.timezone)
