"""``bildwerk serve``: the team's web app and REST API over one workspace (extra ``web``).

The app is one more consumer of the use cases the CLI calls (``bildwerk.accounts``,
``bildwerk.usecases``, the workspace), never a second path through the line.
"""
