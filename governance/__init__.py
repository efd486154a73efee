"""Governance: keys, envelopes, registry, policy, audit, disclosure control.

Kept import-light: the partner kit imports ``envelope.keys`` and ``envelope.format``, which
need only ``cryptography``. Heavier modules (registry, policy) are imported where they are used.
"""
