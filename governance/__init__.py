"""Governance: keys, envelopes, registry, policy, audit, disclosure control.

Kept import-light: the partner kit imports ``governance.keys`` and ``governance.transfer``, which
need only ``cryptography``. Heavier modules (registry, policy) are imported where they are used.
"""
