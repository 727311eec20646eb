"""The host side of the vSphere adapter: the inventory read, its sharing between reconciles, and
the host calls (passthrough configuration, maintenance mode, reboot)."""
