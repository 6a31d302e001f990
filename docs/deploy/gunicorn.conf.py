"""gunicorn with the gevent worker: the alternative to `meeting-server serve` (eventlet).

One gunicorn per port, ONE worker each (a Socket.IO session lives in one process; more
processes means more ports behind nginx, never `-w 2`):

    export MEETING_ASYNC_MODE=gevent MEETING_DATABASE_URL=... MEETING_REDIS_URL=... MEETING_SECRET_KEY=...
    meeting-server db upgrade
    gunicorn -c docs/deploy/gunicorn.conf.py -b 127.0.0.1:8001 'meeting_server.app:create_app()'
    meeting-server worker

Background work needs `meeting-server worker` processes and, for their progress events to
reach the consoles, Redis (`MEETING_REDIS_URL`): gunicorn does not start `serve`'s embedded
worker or its database progress watcher. Websockets work through simple-websocket (installed
with python-engineio's dependencies); gevent-websocket is not needed.
"""

worker_class = "gevent"
workers = 1
# Simultaneous connections per process (a tablet holds one websocket).
worker_connections = 10000
# Websockets and long-polling requests stay open; gevent workers heartbeat on their own.
timeout = 60
graceful_timeout = 10
keepalive = 75
backlog = 2048
accesslog = None
errorlog = "-"
loglevel = "warning"


def post_worker_init(worker):
    """The same garbage-collector tuning as `meeting-server serve --gc tuned`."""
    from meeting_server.cli import start_gc_tuning
    from meeting_server.extensions import socketio

    start_gc_tuning(socketio)
