"""The policy ``oomd`` runs when started without ``-C`` and with no config at the
default path.

Its one source is the commented JSON file ``oomd/etc/oomd.json`` shipped in the
package (upstream's desktop example): ``oomd --print-default-config`` prints it,
``oomd install-service`` installs it as /etc/oomd/oomd.json, and the daemon parses it.
Everything that needs the built-in policy goes through :func:`default_policy_text`, so
a policy that adapts to the host changes one function.
"""

from __future__ import annotations

import os

from oomd.config.errors import ConfigError
from oomd.config.ir import ConfigIR
from oomd.config.parser import parse_config

DEFAULT_POLICY_NAME = "<built-in default policy>"
#: The package resource that holds it: ``oomd/etc/oomd.json``.
DEFAULT_POLICY_RESOURCE = ("oomd", "etc/oomd.json")
#: Where that resource lies when the package is a directory (every install but a zip).
_POLICY_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "etc", "oomd.json")


def default_policy_text() -> str:
    """The built-in policy, as the commented JSON an operator can copy."""
    package, name = DEFAULT_POLICY_RESOURCE
    try:
        try:
            # The file next to the package, read directly: importlib.resources (which
            # imports pathlib, tempfile, shutil, zipfile, ...) costs the daemon 2 MiB.
            with open(_POLICY_FILE, encoding="utf-8") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            from importlib import resources  # a zipped package

            return resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        # A broken installation: say what is missing rather than crash.
        raise ConfigError(
            [f"the built-in default policy ({package}/{name}) cannot be read: {e}"]
        ) from None


def default_policy() -> ConfigIR:
    """The built-in policy, parsed."""
    return parse_config(default_policy_text(), DEFAULT_POLICY_NAME)
