"""The vSphere adapter: the only package that imports pyVmomi."""
