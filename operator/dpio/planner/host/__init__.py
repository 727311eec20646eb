"""The HostPassthroughPolicy side of the planner: which devices of which hosts, passthrough rules,
reboots, deletion and the policy's status. Pure: no I/O."""
