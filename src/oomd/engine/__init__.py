"""Rulesets, detector groups, action chains and the plugin contract."""
