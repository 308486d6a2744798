"""Time math, pure (no I/O): schedule specs and their next fire times, and schedules in words."""
