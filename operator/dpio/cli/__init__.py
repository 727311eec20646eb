"""`dpio`: the administrators' command line (inventory, plan, status)."""
