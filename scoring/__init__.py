"""Scoring against the synthetic ground truth (engineers' harnesses on synthetic data; never a pipeline step).

It reads the simulator's truth file and, to map native record ids to the pseudonymous ones the zones hold, the key
custodian's linkage secret. No zone package (``landing``, ``linkage``, ``governance``) may import it (ADR 0010).
"""
