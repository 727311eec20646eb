"""The vSphere adapter: the only package that imports pyVmomi.

The core (sessions, connection, credentials, errors, property reads, tasks, the change watch, the
inventory mapping) is here; `host` reads hosts and changes them, `vm` reads and reconfigures VMs.
"""
