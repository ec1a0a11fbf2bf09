"""oomd for Python: a userspace out-of-memory killer compatible with Facebook's oomd."""

__version__ = "0.1.0"
