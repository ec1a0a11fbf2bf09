"""Config errors that name where the problem is: file, ruleset, group, plugin, arg."""

from __future__ import annotations


class ConfigError(Exception):
    """One or more problems that make a config unusable; ``problems`` holds each
    message, already prefixed with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
