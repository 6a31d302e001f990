"""Routes and events of the archive domain."""

from ..core.commands import CommandSet

commands = CommandSet("archive")
