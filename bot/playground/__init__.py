"""A local playground: the bot against the Bot API simulator, with a web page to chat as several people."""

from bot.playground.app import Playground, run_playground

__all__ = ["Playground", "run_playground"]
