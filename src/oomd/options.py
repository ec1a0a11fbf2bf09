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
    #: ``--record-dir``/``--record-keep``: the flight recorder (oomd.recorder).
    record_dir: str | None = None
    record_keep: int = 300

    @property
    def stats_socket(self) -> str:
        return os.path.join(self.runtime_dir, SOCKET_NAME)
