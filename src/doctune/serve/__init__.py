"""The workbench: a local web app over a workspace (``doctune serve``).

FastAPI routes render Jinja2 templates (autoescaped) with a little plain JavaScript from ``static/`` (no front-end
build step). Each page is a router module: ``overview``, ``browse``, ``review``, ``compare``, ``models``, ``talk``;
:mod:`doctune.serve.app` assembles them behind the protections of :mod:`doctune.serve.safety`.
"""

from doctune.serve.app import ServeContext, create_app

__all__ = ["ServeContext", "create_app"]
