"""The contract between the partner kit and the landing zone: signed, encrypted envelopes and the key rings.

Depends on ``cryptography`` (and pyarrow to count a payload's rows) only; ships with the partner kit.
"""
