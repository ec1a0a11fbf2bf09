"""oomdvm: a throw-away qemu guest with pure cgroup2, PSI and swap (see oomdvm.py)."""
