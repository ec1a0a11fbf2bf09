"""Built-in plugins: detectors, kill plugins (one shared kill core) and other actions."""
