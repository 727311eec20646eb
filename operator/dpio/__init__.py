"""dpio-operator: keeps vSphere DirectPath I/O (PCI passthrough) in line with Kubernetes objects."""

__version__ = "0.1.0"
