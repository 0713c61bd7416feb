"""``governance:`` in ``bildwerk.yaml``: separation of duties and generation quotas.

Duties are separated by default: nobody approves a creative of a run they submitted, and
nobody publishes a creative they approved themselves. An admin may override either; the
override is an audited event of its own. The rules bind the web app and the API; the
command line, run by whoever holds the workspace's files, follows them only with
``cli: true`` (its ``--by`` names are not logins).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bildwerk.accounts.roles import Role


class Quotas(BaseModel):
    """Images a person may queue for generation per rolling 24 hours (cached images do
    not count). A user's own entry wins over their roles'; with several roles, the most
    generous applies; nobody listed is unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    users: dict[str, int] = Field(default_factory=dict, description="user -> images per day")
    roles: dict[str, int] = Field(default_factory=dict, description="role -> images per day")

    @field_validator("users", "roles")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        for who, n in value.items():
            if n < 0:
                raise ValueError(f"{who}: a quota is a number of images, 0 or more")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, int]) -> dict[str, int]:
        known = {r.value for r in Role}
        for role in value:
            if role not in known:
                raise ValueError(f"unknown role {role!r} (roles: {', '.join(sorted(known))})")
        return value

    def limit_for(self, user: str, roles: frozenset[str] | set[str]) -> int | None:
        if user in self.users:
            return self.users[user]
        limits = [self.roles[r] for r in roles if r in self.roles]
        return max(limits) if limits else None


class Governance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    separation_of_duties: bool = Field(
        True,
        description="refuse approving creatives of one's own run and publishing one's own "
        "approvals (admins may override, which is audited)",
    )
    cli: bool = Field(False, description="apply these rules to the command line as well")
    quotas: Quotas = Quotas()
