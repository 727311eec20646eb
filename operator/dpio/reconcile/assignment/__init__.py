"""VMDeviceAssignment: the reconciler, its inputs, its writes and what re-enqueues it."""
