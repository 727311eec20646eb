"""The VM side of the vSphere adapter: reading a VM and its environment, and reconfiguring it."""
