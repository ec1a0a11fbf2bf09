"""The daemon's settings as the command line gives them, and their defaults.

Its own module so that ``daemon`` (and anything else below ``cli``) can take an
``Options`` without importing the command-line parser.
"""

from __future__ import annotations

import os

from oomd.cgroup.iocost import DEFAULT_HDD_COEFFS, DEFAULT_SSD_COEFFS, DeviceType, IoCostCoeffs
from oomd.stats import SOCKET_NAME
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

DEFAULT_CONFIG = "/etc/oomd.json"
DEFAULT_RUNTIME_DIR = "/run/oomd"
DEFAULT_KMSG = "/dev/kmsg"
DEFAULT_INTERVAL = 5
#: One status line every 5 minutes: a heartbeat an operator can grep for, 288 lines a
#: day (earlyoom's -r defaults to an hour; at 5 s ticks a line per tick is noise).
DEFAULT_REPORT_INTERVAL = 300
#: ``<runtime-dir>/oomd-status.socket``: ``oomd status`` asks the daemon here.
STATUS_SOCKET_NAME = "oomd-status.socket"


class Options:
    """The settings, one class attribute per setting with its default (so a new flag is
    one line here). Mutable defaults are copied per instance; equal when every setting
    is. A plain class, not a dataclass: ``dataclasses`` costs the daemon 1.3 MiB of
    imports (bench/README.md)."""

    config: str = DEFAULT_CONFIG
    config_given: bool = False
    interval: int = DEFAULT_INTERVAL
    cgroup_fs: str | None = None
    check_config: bool = False
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    kmsg: str = DEFAULT_KMSG
    dry_run: bool = False
    #: ``--device``: io.stat device id -> SSD/HDD, for io cost.
    io_devices: dict[str, DeviceType] = {}
    ssd_coeffs: IoCostCoeffs = DEFAULT_SSD_COEFFS
    hdd_coeffs: IoCostCoeffs = DEFAULT_HDD_COEFFS
    dump_stats: bool = False
    reset_stats: bool = False
    dropin_dir: str | None = None
    #: ``--plugin-dir``: directories of third-party plugin files.
    plugin_dirs: list[str] = []
    #: ``--strict`` (with ``-c``): every warning fails the check.
    strict: bool = False
    #: ``--drop-in FILE`` (with ``-c``): one drop-in file to check against the config.
    dropin_file: str | None = None
    #: ``--record-dir``/``--record-keep``: the flight recorder (oomd.recorder).
    record_dir: str | None = None
    record_keep: int = 300
    #: ``--report-interval``: seconds between status lines in the log (0: none).
    report_interval: int = DEFAULT_REPORT_INTERVAL
    #: ``--metrics-address HOST:PORT``: serve Prometheus metrics there.
    metrics_address: str | None = None
    #: ``--log-format``: ``text`` (upstream's lines) or ``json``.
    log_format: str = "text"

    def __init__(self, **settings: Any) -> None:
        names = self.names()
        for name in names:
            default = getattr(Options, name)
            if isinstance(default, dict | list):
                setattr(self, name, type(default)(default))
        for name, value in settings.items():
            if name not in names:
                raise TypeError(f"Options has no setting {name!r}")
            setattr(self, name, value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting, in declaration order."""
        return tuple(name for name in Options.__annotations__ if not name.startswith("_"))

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.names())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.names())
        return f"Options({settings})"

    @property
    def stats_socket(self) -> str:
        return os.path.join(self.runtime_dir, SOCKET_NAME)

    @property
    def status_socket(self) -> str:
        return os.path.join(self.runtime_dir, STATUS_SOCKET_NAME)
