"""Roles and permissions, declarative: what each role may do, in words a steward can read."""

from __future__ import annotations

import enum

from governance.registry.models import Role


class Permission(enum.StrEnum):
    REQUEST_SUBMIT = "submit and withdraw data requests"
    STUDY_RUN = "run an approved linked-data study extract"
    COHORT_EXPORT = "export an approved de-identified program cohort"
    REVIEW_AS_STEWARD = "review requests touching their agency's data"
    REVIEW_AS_COMMUNITY = "review record-level and race/ethnicity requests for the community"
    REVOKE = "revoke an approval"
    AUDIT_VERIFY = "verify the audit chain"
    RETENTION_SWEEP = "destroy outputs and study keys at retention end"
    PARTNER_KEYS = "register a partner's public signing key"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: frozenset({Permission.REQUEST_SUBMIT, Permission.STUDY_RUN}),
    Role.EVALUATOR: frozenset({Permission.REQUEST_SUBMIT, Permission.COHORT_EXPORT}),
    Role.STEWARD: frozenset({Permission.REVIEW_AS_STEWARD, Permission.REVOKE, Permission.AUDIT_VERIFY}),
    Role.COMMUNITY_REVIEWER: frozenset({Permission.REVIEW_AS_COMMUNITY, Permission.REVOKE, Permission.AUDIT_VERIFY}),
    Role.ENGINEER: frozenset({Permission.AUDIT_VERIFY, Permission.RETENTION_SWEEP, Permission.PARTNER_KEYS}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
