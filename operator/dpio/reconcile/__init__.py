"""Observe -> plan -> apply -> status, per kind; reaches vSphere through a protocol.

The core (controller, work queue, ports, own writes, the shared finalizer, constants) is here;
`policy` and `assignment` hold one reconciler per kind.
"""
