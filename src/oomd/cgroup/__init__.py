"""The cgroup2 model: paths and patterns, per-tick contexts, /proc readers."""
