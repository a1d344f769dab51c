"""The web process: the HTTP API, its Server-Sent Events and the dashboard (``corral web``).

A client of the control socket like the CLI, run by the daemon as an app (``corral-web``).  It never
imports the daemon or the process layer; every route comes from ``control.ops``.
"""
