"""Paperless meeting server.

This module stays light (no Flask, no SQLAlchemy at import) so that `serve`
can monkey-patch with eventlet before anything else is imported.
"""

__version__ = "0.1.0"


def create_app(settings=None, **overrides):
    from .app import create_app as factory

    return factory(settings, **overrides)
