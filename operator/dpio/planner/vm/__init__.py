"""The VMDeviceAssignment side of the planner: devices, claims, MMIO, power, tenancy, deletion and
the assignment's status. Pure: no I/O."""
