"""Fault-injection suite: real processes, real servers, a fault, then the same invariants (README "Reliability")."""
