"""Test support: the one fake cgroup tree builder, fake /proc, and process helpers."""
