"""People and scripts who use a shared workspace: users with roles, API tokens, and the
one permission table every entry point (CLI, web pages, REST API) checks against."""
