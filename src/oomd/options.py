"""The daemon's settings as the command line gives them, and their defaults.

Its own module so that ``daemon`` (and anything else below ``cli``) can take an
``Options`` without importing the command-line parser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from oomd.cgroup.iocost import DEFAULT_HDD_COEFFS, DEFAULT_SSD_COEFFS, DeviceType, IoCostCoeffs
from oomd.stats import SOCKET_NAME

DEFAULT_CONFIG = "/etc/oomd.json"
DEFAULT_RUNTIME_DIR = "/run/oomd"
DEFAULT_KMSG = "/dev/kmsg"
DEFAULT_INTERVAL = 5
#: One status line every 5 minutes: a heartbeat an operator can grep for, 288 lines a
#: day (earlyoom's -r defaults to an hour; at 5 s ticks a line per tick is noise).
DEFAULT_REPORT_INTERVAL = 300
#: ``<runtime-dir>/oomd-status.socket``: ``oomd status`` asks the daemon here.
STATUS_SOCKET_NAME = "oomd-status.socket"


@dataclass
class Options:
    config: str = DEFAULT_CONFIG
    config_given: bool = False
    interval: int = DEFAULT_INTERVAL
    cgroup_fs: str | None = None
    check_config: bool = False
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    kmsg: str = DEFAULT_KMSG
    dry_run: bool = False
    #: ``--device``: io.stat device id -> SSD/HDD, for io cost.
    io_devices: dict[str, DeviceType] = field(default_factory=dict)
    ssd_coeffs: IoCostCoeffs = DEFAULT_SSD_COEFFS
    hdd_coeffs: IoCostCoeffs = DEFAULT_HDD_COEFFS
    dump_stats: bool = False
    reset_stats: bool = False
    dropin_dir: str | None = None
    #: ``--plugin-dir``: directories of third-party plugin files.
    plugin_dirs: list[str] = field(default_factory=list)
    #: ``--report-interval``: seconds between status lines in the log (0: none).
    report_interval: int = DEFAULT_REPORT_INTERVAL
    #: ``--metrics-address HOST:PORT``: serve Prometheus metrics there.
    metrics_address: str | None = None
    #: ``--log-format``: ``text`` (upstream's lines) or ``json``.
    log_format: str = "text"

    @property
    def stats_socket(self) -> str:
        return os.path.join(self.runtime_dir, SOCKET_NAME)

    @property
    def status_socket(self) -> str:
        return os.path.join(self.runtime_dir, STATUS_SOCKET_NAME)
