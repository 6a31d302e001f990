"""Routes and events of the minutes domain."""

from ..core.commands import CommandSet

commands = CommandSet("minutes")
