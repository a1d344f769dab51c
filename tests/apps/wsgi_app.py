"""A minimal WSGI app for gunicorn: answers with the worker's pid and the master's."""

import os


def app(environ, start_response):  # type: ignore[no-untyped-def]
    body = f"pid={os.getpid()} master={os.getppid()} instance={os.environ.get('CORRAL_INSTANCE')}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
