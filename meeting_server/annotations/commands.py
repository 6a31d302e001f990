"""Routes and events of the annotations domain."""

from ..core.commands import CommandSet

commands = CommandSet("annotations")
