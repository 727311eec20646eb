"""Pure planning: observed vSphere inventory + spec -> plan and status. No I/O, no clock."""
