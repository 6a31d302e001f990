"""Routes and events of the attendance domain."""

from ..core.commands import CommandSet

commands = CommandSet("attendance")
