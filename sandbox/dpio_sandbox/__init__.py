"""Python side of the local sandbox: control plane, vSphere simulator, process handling."""
