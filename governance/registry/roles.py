"""Roles, permissions and actions, declarative: what each role may do, in words a steward can read.

``ACTIONS`` is the one table of what every state-changing library action needs: each action names the
permissions that let it run (any one of them). :func:`governance.registry.permissions.require` checks it for
every action and audits a refusal; an action missing from the table cannot run at all. The export gate
(:func:`governance.registry.policy.authorize`) asks the same table, never a role.
"""

from __future__ import annotations

import enum

from governance.registry.models import Role

__all__ = ["ACTIONS", "DIAGNOSTIC", "PERMISSIONS", "Permission", "allowed", "permissions_for"]


class Permission(enum.StrEnum):
    REQUEST_SUBMIT = "submit and withdraw data requests"
    STUDY_RUN = "run an approved linked-data study extract"
    COHORT_EXPORT = "export an approved de-identified program cohort or its aggregate summary"
    REVIEW_AS_STEWARD = "review requests touching their agency's data"
    REVIEW_AS_COMMUNITY = "review record-level and race/ethnicity requests for the community"
    REVOKE = "revoke an approval"
    AUDIT_VERIFY = "verify the audit chain"
    AUDIT_CHECKPOINT = "sign a checkpoint of the audit chain, kept outside the registry"
    RETENTION_SWEEP = "destroy outputs and study keys at retention end"
    PARTNER_KEYS = "register a partner's public signing key"
    USERS_MANAGE = "add and remove users, stewards and data-sharing agreements, and set how they sign in"
    OUTPUT_CHECK = "check a released output's disclosure report before it can leave (never one's own)"
    BROWSE = "browse the k-anonymous analyst views of the marts (no person identifiers)"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: frozenset({Permission.REQUEST_SUBMIT, Permission.STUDY_RUN, Permission.BROWSE}),
    Role.EVALUATOR: frozenset({Permission.REQUEST_SUBMIT, Permission.COHORT_EXPORT, Permission.BROWSE}),
    Role.STEWARD: frozenset({Permission.REVIEW_AS_STEWARD, Permission.REVOKE, Permission.AUDIT_VERIFY,
                             Permission.AUDIT_CHECKPOINT, Permission.OUTPUT_CHECK}),
    Role.COMMUNITY_REVIEWER: frozenset({Permission.REVIEW_AS_COMMUNITY, Permission.REVOKE, Permission.AUDIT_VERIFY,
                                        Permission.AUDIT_CHECKPOINT}),
    Role.ENGINEER: frozenset({Permission.AUDIT_VERIFY, Permission.RETENTION_SWEEP, Permission.PARTNER_KEYS,
                              Permission.OUTPUT_CHECK}),
    Role.ADMINISTRATOR: frozenset({Permission.USERS_MANAGE, Permission.AUDIT_VERIFY}),
}

#: Every state-changing action and the permissions that let it run (any one). The action's name is also
#: how its refusal is audited (``refused.<action>``).
ACTIONS: dict[str, tuple[Permission, ...]] = {
    "request.submit": (Permission.REQUEST_SUBMIT,),
    "request.withdraw": (Permission.REQUEST_SUBMIT,),
    "review": (Permission.REVIEW_AS_STEWARD, Permission.REVIEW_AS_COMMUNITY),
    "request.revoke": (Permission.REVOKE,),
    "export.cohort": (Permission.COHORT_EXPORT,),
    "export.summary": (Permission.COHORT_EXPORT,),
    "study.run": (Permission.STUDY_RUN,),
    "audit.verify": (Permission.AUDIT_VERIFY,),
    "audit.checkpoint": (Permission.AUDIT_CHECKPOINT,),
    "retention.sweep": (Permission.RETENTION_SWEEP,),
    "partner.register": (Permission.PARTNER_KEYS,),
    "user.add": (Permission.USERS_MANAGE,),
    "user.remove": (Permission.USERS_MANAGE,),
    "account.credentials": (Permission.USERS_MANAGE,),
    "agreement.add": (Permission.USERS_MANAGE,),
    "output.check": (Permission.OUTPUT_CHECK,),
    "browse": (Permission.BROWSE,),
}


#: Actions that only read and report, and must work on a chain that no longer verifies (reporting a broken
#: chain is the point): for them an actor's user row is trusted on its role alone when the chain is broken.
DIAGNOSTIC = frozenset({"audit.verify"})


def allowed(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def permissions_for(action: str) -> tuple[Permission, ...]:
    """The permissions declared for ``action``; empty when it declares none (then it cannot run)."""
    perms = ACTIONS.get(action, ())
    return tuple(p for p in perms if isinstance(p, Permission))
