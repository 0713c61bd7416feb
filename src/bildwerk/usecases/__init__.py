"""Use cases: plain functions over a :class:`~bildwerk.workspace.Workspace` returning typed
results. ``Workspace`` exposes them as methods; the CLI (and later the web app and the
REST API) are thin adapters over the same functions."""
