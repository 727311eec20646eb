"""Observe -> plan -> apply -> status, per kind; reaches vSphere through a protocol."""
