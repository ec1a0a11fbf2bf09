"""Config: JSON (jsoncpp-compatible) -> typed IR -> compiled engine."""
