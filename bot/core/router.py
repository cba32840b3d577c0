"""Routes an event to the handler for it: commands, button presses, conversation steps, menu buttons.

Callback data is ``<prefix>:<arg>:<arg>...``, compact enough for Telegram's 64 bytes. Commands interrupt any
conversation step; a button press goes to its prefix's handler whatever step the person is in (or to the
handler of ``<prefix>:<first arg>`` when one is registered).

A router may carry a ``RoleFilter``: every route registered on it then answers people without the role with
the filter's refusal instead of running, so handlers never check roles themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.context import Context
from bot.core.messages import ButtonPress, Command, Event, Text
from storage.models import Person

Handler = Callable[[Context], None]


@dataclass(frozen=True)
class RoleFilter:
    """Who may use a router's routes (a predicate of ``bot.core.roles``) and what others are told (a message
    id, translated for the reader)."""

    allows: Callable[[Person], bool]
    refusal: str

    def guard(self, handler: Handler) -> Handler:
        def guarded(ctx: Context) -> None:
            if self.allows(ctx.person):
                handler(ctx)
                return
            text = ctx.t._(self.refusal)
            if isinstance(ctx.event, ButtonPress):
                ctx.answer(text, alert=True)
                return
            ctx.clear_state()
            ctx.reply(text)

        return guarded


def callback(prefix: str, *args: object) -> str:
    """Build callback data for a button handled by ``Router.button(prefix)``."""
    return ":".join([prefix, *(str(arg) for arg in args)])


def button_args(ctx: Context) -> list[str]:
    """The arguments after the prefix of the pressed button's callback data."""
    assert isinstance(ctx.event, ButtonPress)
    return ctx.event.data.split(":")[1:]


@dataclass
class Router:
    role: RoleFilter | None = None
    commands: dict[str, Handler] = field(default_factory=dict)
    buttons: dict[str, Handler] = field(default_factory=dict)
    # Conversation steps, by the part of the state name before the first "."
    steps: dict[str, Handler] = field(default_factory=dict)
    # Reply-keyboard labels (message ids, translated per person) that stand for a command.
    menu: dict[str, str] = field(default_factory=dict)
    fallback: Handler | None = None
    # What is answered in group chats (team chats); everything else said there is ignored.
    group: Router | None = None

    def _guarded(self, handler: Handler) -> Handler:
        return self.role.guard(handler) if self.role is not None else handler

    def command(self, *names: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for name in names:
                self.commands[name] = self._guarded(handler)
            return handler

        return register

    def button(self, prefix: str) -> Callable[[Handler], Handler]:
        """Register the handler of a callback prefix, or of ``prefix:first-arg`` for one kind of button."""

        def register(handler: Handler) -> Handler:
            self.buttons[prefix] = self._guarded(handler)
            return handler

        return register

    def step(self, state_prefix: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.steps[state_prefix] = self._guarded(handler)
            return handler

        return register

    def include(self, other: Router) -> None:
        self.commands.update(other.commands)
        self.buttons.update(other.buttons)
        self.steps.update(other.steps)
        self.menu.update(other.menu)
        self.fallback = other.fallback or self.fallback

    def resolve(self, ctx: Context) -> Handler | None:
        event = ctx.event
        if isinstance(event, Text):
            command = self._menu_command(ctx, event.text)
            if command is not None:
                ctx.event = Command(command)
                event = ctx.event
        if isinstance(event, Command) and event.name in self.commands:
            return self.commands[event.name]
        if isinstance(event, ButtonPress):
            prefix, _, rest = event.data.partition(":")
            specific = self.buttons.get(f"{prefix}:{rest.split(':', 1)[0]}")
            return specific or self.buttons.get(prefix)
        if ctx.person.state:
            handler = self.steps.get(ctx.person.state.split(".", 1)[0])
            if handler is not None:
                return handler
        return self.fallback

    def routes(self, event: Event) -> bool:
        """Whether a command or button route of this router takes ``event`` (conversation steps aside)."""
        if isinstance(event, Command):
            return event.name in self.commands
        if isinstance(event, ButtonPress):
            prefix, _, rest = event.data.partition(":")
            return f"{prefix}:{rest.split(':', 1)[0]}" in self.buttons or prefix in self.buttons
        return False

    def _menu_command(self, ctx: Context, text: str) -> str | None:
        for label, command in self.menu.items():
            if ctx.t._(label) == text.strip():
                return command
        return None
