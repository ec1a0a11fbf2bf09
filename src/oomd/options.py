"""The daemon's settings as the command line gives them, and their defaults.

Its own module so that ``daemon`` (and anything else below ``cli``) can take an
``Options`` without importing the command-line parser.
"""

from __future__ import annotations

import os

from oomd.cgroup.iocost import DEFAULT_HDD_COEFFS, DEFAULT_SSD_COEFFS, DeviceType, IoCostCoeffs
from oomd.stats import SOCKET_NAME

DEFAULT_CONFIG = "/etc/oomd.json"
DEFAULT_RUNTIME_DIR = "/run/oomd"
DEFAULT_KMSG = "/dev/kmsg"
DEFAULT_INTERVAL = 5


class Options:
    """The settings; equal when every setting is (a plain class, not a dataclass:
    ``dataclasses`` costs the daemon 1.3 MiB of imports, bench/README.md)."""

    __slots__ = (
        "cgroup_fs",
        "check_config",
        "config",
        "config_given",
        "dropin_dir",
        "dry_run",
        "dump_stats",
        "hdd_coeffs",
        "interval",
        "io_devices",
        "kmsg",
        "plugin_dirs",
        "reset_stats",
        "runtime_dir",
        "ssd_coeffs",
    )

    def __init__(
        self,
        config: str = DEFAULT_CONFIG,
        config_given: bool = False,
        interval: int = DEFAULT_INTERVAL,
        cgroup_fs: str | None = None,
        check_config: bool = False,
        runtime_dir: str = DEFAULT_RUNTIME_DIR,
        kmsg: str = DEFAULT_KMSG,
        dry_run: bool = False,
        io_devices: dict[str, DeviceType] | None = None,
        ssd_coeffs: IoCostCoeffs = DEFAULT_SSD_COEFFS,
        hdd_coeffs: IoCostCoeffs = DEFAULT_HDD_COEFFS,
        dump_stats: bool = False,
        reset_stats: bool = False,
        dropin_dir: str | None = None,
        plugin_dirs: list[str] | None = None,
    ) -> None:
        self.config = config
        self.config_given = config_given
        self.interval = interval
        self.cgroup_fs = cgroup_fs
        self.check_config = check_config
        self.runtime_dir = runtime_dir
        self.kmsg = kmsg
        self.dry_run = dry_run
        #: ``--device``: io.stat device id -> SSD/HDD, for io cost.
        self.io_devices: dict[str, DeviceType] = {} if io_devices is None else io_devices
        self.ssd_coeffs = ssd_coeffs
        self.hdd_coeffs = hdd_coeffs
        self.dump_stats = dump_stats
        self.reset_stats = reset_stats
        self.dropin_dir = dropin_dir
        #: ``--plugin-dir``: directories of third-party plugin files.
        self.plugin_dirs: list[str] = [] if plugin_dirs is None else plugin_dirs

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Options({settings})"

    @property
    def stats_socket(self) -> str:
        return os.path.join(self.runtime_dir, SOCKET_NAME)
