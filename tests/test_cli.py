"""The command line (``oomd.cli``): upstream ``src/oomd/Main.cpp``'s flags, glibc
``getopt_long`` behaviour, messages and exit codes (reference section 1.1).

Cases marked "verified against upstream" were checked by running the Debian oomd
0.5.0 binary; the suite does not need it. Output goes straight to fd 2 (``oomd.log``),
so it is captured with ``capfd``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from oomd import __version__
from oomd.cgroup.iocost import DEFAULT_HDD_COEFFS, DEFAULT_SSD_COEFFS, DeviceType, IoCostCoeffs
from oomd.cli import UsageExit, parse_args
from oomd.options import DEFAULT_CONFIG, Options
from oomd.plugins import registry

# Reference 1.1 "Usage text (stderr), exactly" (upstream Main.cpp); ours may add
# lines for its extensions after it.
UPSTREAM_USAGE = """usage: oomd [OPTION]...

optional arguments:
  --help, -h                 Show this help message and exit
  --version, -v              Print version and exit
  --config, -C CONFIG        Config file (default: /etc/oomd.json)
  --interval, -i INTERVAL    Event loop polling interval (default: 5)
  --cgroup-fs, -f FS         Cgroup2 filesystem mount point (default: /sys/fs/cgroup)
  --check-config, -c CONFIG  Check config file (default: /etc/oomd.json)
  --list-plugins, -l         List all available plugins
  --drop-in-dir, -w DIR      Directory to watch for drop in configs
  --runtime-dir, -D PATH     Directory for runtime files (default: /run/oomd)
  --dump-stats, -d           Dump accumulated stats
  --reset-stats, -r          Reset stats collection
  --device DEVS              Comma separated <major>:<minor> pairs for IO cost calculation (default: none)
  --ssd-coeffs COEFFS        Comma separated values for SSD IO cost calculation (default: see doc)
  --hdd-coeffs COEFFS        Comma separated values for HDD IO cost calculation (default: see doc)
  --kmsg-override PATH       File to log kills to (default: /dev/kmsg)
"""


def exit_code(argv: Sequence[str]) -> int:
    with pytest.raises(UsageExit) as excinfo:
        parse_args(argv)
    return excinfo.value.code


def usage_error(argv: Sequence[str], capfd: pytest.CaptureFixture[str]) -> list[str]:
    """Run a command line that must fail with a getopt error; return stderr's lines
    before the usage text (which must follow)."""
    assert exit_code(argv) == 1
    out, err = capfd.readouterr()
    assert out == ""
    head, sep, usage = err.partition("usage: oomd [OPTION]...")
    assert sep, err
    assert (sep + usage).startswith(UPSTREAM_USAGE)
    return head.splitlines()


# -- defaults and values ----------------------------------------------------------------


def test_no_arguments_gives_upstreams_defaults() -> None:
    """Reference 1.1: config /etc/oomd.json, interval 5, runtime /run/oomd, kmsg
    /dev/kmsg; the cgroup fs is found later when -f is not given."""
    opts = parse_args([])
    assert opts == Options()
    assert opts.config == DEFAULT_CONFIG == "/etc/oomd.json"
    assert opts.config_given is False
    assert opts.interval == 5
    assert opts.cgroup_fs is None
    assert opts.check_config is False
    assert opts.runtime_dir == "/run/oomd"
    assert opts.kmsg == "/dev/kmsg"
    assert opts.dry_run is False


def test_each_valued_option_sets_its_field() -> None:
    opts = parse_args(
        ["-C", "/etc/x.json", "-i", "2", "-f", "/fs", "-D", "/run/x", "--kmsg-override", "/k"]
    )
    assert (opts.config, opts.config_given, opts.check_config) == ("/etc/x.json", True, False)
    assert opts.interval == 2
    assert opts.cgroup_fs == "/fs"
    assert opts.runtime_dir == "/run/x"
    assert opts.kmsg == "/k"


def test_long_options_set_the_same_fields() -> None:
    opts = parse_args(
        ["--config", "/c", "--interval", "3", "--cgroup-fs", "/fs", "--runtime-dir", "/r"]
    )
    assert (opts.config, opts.interval, opts.cgroup_fs, opts.runtime_dir) == ("/c", 3, "/fs", "/r")


def test_opt_equals_value_form_is_accepted() -> None:
    """Reference 1.1: getopt_long takes --opt=value as well as --opt value."""
    opts = parse_args(["--config=/c.json", "--interval=7", "--kmsg-override=/k", "--cgroup-fs=/f"])
    assert (opts.config, opts.interval, opts.kmsg, opts.cgroup_fs) == ("/c.json", 7, "/k", "/f")


def test_short_option_value_may_be_attached() -> None:
    """glibc getopt: -i7 is -i 7 (verified against upstream)."""
    assert parse_args(["-i7"]).interval == 7


def test_unambiguous_long_option_prefix_is_accepted() -> None:
    """Reference 1.1: unambiguous prefixes such as --inter are accepted by getopt."""
    assert parse_args(["--inter", "3"]).interval == 3
    assert parse_args(["--inter=4"]).interval == 4
    assert parse_args(["--kmsg", "/k"]).kmsg == "/k"
    assert parse_args(["--dry"]).dry_run is True


def test_options_may_come_in_any_order() -> None:
    """Reference 1.1: getopt permutes, so options may appear in any order."""
    opts = parse_args(["-i", "9", "--dry-run", "-f", "/fs", "-C", "/c"])
    assert (opts.interval, opts.dry_run, opts.cgroup_fs, opts.config) == (9, True, "/fs", "/c")


def test_option_after_a_non_option_is_still_parsed(capfd: pytest.CaptureFixture[str]) -> None:
    """glibc getopt permutes argv: options after a stray word are parsed first, so the
    interval error is what is reported (verified against upstream: `oomd stray -i 0`
    prints the interval error, `oomd stray -v` prints the version)."""
    assert exit_code(["stray", "-i", "0"]) == 1
    assert capfd.readouterr().err == "Interval not a >0 integer: 0\n"
    assert exit_code(["stray", "-v"]) == 0
    assert capfd.readouterr().out == f"v{__version__}\n"


def test_required_value_that_looks_like_an_option_is_taken_as_the_value() -> None:
    """glibc getopt: a required argument is the next word whatever it looks like
    (verified against upstream: `-c --kmsg-override` checks a file named so)."""
    opts = parse_args(["-c", "--dry-run"])
    assert opts.config == "--dry-run"
    assert opts.dry_run is False


# -- -c / -C ------------------------------------------------------------------------------


def test_check_config_sets_check_mode_and_the_config_file() -> None:
    """Reference 1.1: -c sets check-config mode AND the config file."""
    opts = parse_args(["-c", "/tmp/x.json"])
    assert (opts.check_config, opts.config, opts.config_given) == (True, "/tmp/x.json", True)
    assert parse_args(["--check-config", "/y"]).check_config is True


def test_last_of_config_and_check_config_wins_for_the_file_name() -> None:
    """Reference 1.1: -C and -c set the same variable; the last wins (verified against
    upstream: `-c good -C missing` reads "missing")."""
    opts = parse_args(["-c", "/a.json", "-C", "/b.json"])
    assert (opts.config, opts.check_config) == ("/b.json", True)
    opts = parse_args(["-C", "/a.json", "-c", "/b.json"])
    assert (opts.config, opts.check_config) == ("/b.json", True)


def test_dry_run_extension_sets_dry_run() -> None:
    assert parse_args(["--dry-run"]).dry_run is True


# -- -h, -v, -l -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-h", "--help", "--he"])
def test_help_prints_usage_on_stdout_and_exits_0(
    flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1: usage, exit 0; on stdout, not upstream's stderr, so it can be
    piped (docs/compatibility.md)."""
    assert exit_code([flag]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert out.startswith(UPSTREAM_USAGE)


@pytest.mark.parametrize("flag", ["-v", "--version", "--vers"])
def test_version_prints_v_and_version_on_stdout_and_exits_0(
    flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1: version string + newline on stdout (upstream prints v0.5.0)."""
    assert exit_code([flag]) == 0
    out, err = capfd.readouterr()
    assert out == f"v{__version__}\n"
    assert err == ""


@pytest.mark.parametrize("flag", ["-l", "--list-plugins"])
def test_list_plugins_prints_each_plugin_on_stdout_and_exits_0(
    flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1: `List of plugins oomd was compiled with:` then one line per
    plugin prefixed with a space; on stdout (upstream: stderr) so `oomd -l | grep`
    works."""
    assert exit_code([flag]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "List of plugins oomd was compiled with:"
    assert all(line.startswith(" ") for line in lines[1:])
    # Built-ins are exactly " name"; third-party plugins (e.g. the example package
    # installed by `make test`) add their origin: " name (entry point: ...)".
    listed = {line[1:] for line in lines[1:] if " (" not in line}
    assert listed == set(registry.names())
    assert all(line.endswith(")") for line in lines[1:] if " (" in line)
    assert {"continue", "stop", "pressure_above", "kill_by_memory_size_or_growth"} <= listed
    # Every upstream detector (issue 3), kernel_panic included.
    assert {
        "pressure_above",
        "pressure_rising_beyond",
        "memory_above",
        "memory_reclaim",
        "swap_free",
        "exists",
        "nr_dying_descendants",
        "dump_cgroup_overview",
        "kernel_panic",
    } <= listed
    # All five kill plugins (issue 4).
    assert {
        "kill_by_memory_size_or_growth",
        "kill_by_swap_usage",
        "kill_by_pressure",
        "kill_by_pg_scan",
        "kill_by_io_cost",
    } <= listed


def test_help_version_and_list_act_where_they_appear(capfd: pytest.CaptureFixture[str]) -> None:
    """Reference 1.1: errors in options before -h/-v/-l are seen, options after them
    are not even looked at (verified against upstream: `-i 0 -v` exits 1)."""
    assert exit_code(["-i", "0", "-v"]) == 1
    assert capfd.readouterr().err == "Interval not a >0 integer: 0\n"
    assert exit_code(["-v", "-i", "0"]) == 0
    assert capfd.readouterr().out == f"v{__version__}\n"
    assert exit_code(["-h", "stray"]) == 0
    assert capfd.readouterr().out.startswith(UPSTREAM_USAGE)


@pytest.mark.parametrize(
    "argv", [["-v", "--bogus"], ["-v", "-k"], ["-h", "-k"], ["-l", "--bogus"], ["-v", "-c"]]
)
def test_getopt_error_after_help_version_or_list_is_never_seen(argv: list[str]) -> None:
    """Reference 1.1: -h, -v, -l act when getopt reaches them, so a bad option after
    them is never parsed (verified against upstream: `oomd -v -k` prints v0.5.0 and
    exits 0)."""
    assert exit_code(argv) == 0


# -- getopt errors -----------------------------------------------------------------------------


def test_unrecognized_long_option_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    """Reference 1.1 (verified against upstream): glibc's message, then oomd's, then
    the usage; exit 1."""
    assert usage_error(["--bogus"], capfd) == [
        "oomd: unrecognized option '--bogus'",
        "Unknown option or missing argument",
    ]


@pytest.mark.parametrize("flag", ["-k", "-s"])
def test_invalid_short_option_is_a_usage_error(
    flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1: there is no -k (--kmsg-override is long only); verified against
    upstream."""
    assert usage_error([flag], capfd) == [
        f"oomd: invalid option -- '{flag[1]}'",
        "Unknown option or missing argument",
    ]


@pytest.mark.parametrize("flag", ["c", "C", "i", "f", "w", "D"])
def test_short_option_missing_its_argument_is_a_usage_error(
    flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1 (verified against upstream for -c)."""
    assert usage_error([f"-{flag}"], capfd) == [
        f"oomd: option requires an argument -- '{flag}'",
        "Unknown option or missing argument",
    ]


@pytest.mark.parametrize(
    ("argv", "name"),
    [(["--config"], "config"), (["--kmsg"], "kmsg-override"), (["--interval"], "interval")],
)
def test_long_option_missing_its_argument_is_a_usage_error(
    argv: list[str], name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """glibc names the whole option even when a prefix was given (verified against
    upstream for --config and --kmsg)."""
    assert usage_error(argv, capfd) == [
        f"oomd: option '--{name}' requires an argument",
        "Unknown option or missing argument",
    ]


def test_argument_to_a_flag_option_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    """Verified against upstream: `--help=x`."""
    assert usage_error(["--help=x"], capfd) == [
        "oomd: option '--help' doesn't allow an argument",
        "Unknown option or missing argument",
    ]


def test_ambiguous_long_option_prefix_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    """Verified against upstream: `--c x` is ambiguous (glibc then lists
    '--config' '--cgroup-fs' '--check-config')."""
    head = usage_error(["--c", "x"], capfd)
    assert head[0].startswith("oomd: option '--c' is ambiguous")
    assert head[1:] == ["Unknown option or missing argument"]


@pytest.mark.parametrize(
    ("argv", "quoted"),
    [
        (["a", "b"], '"a" "b" '),
        (["-i", "3", "x"], '"x" '),
        (["-c", "f.json", "g.json"], '"g.json" '),
        (["--", "-v"], '"-v" '),
        (["-i", "3", "-"], '"-" '),
    ],
)
def test_non_option_arguments_are_rejected(
    argv: list[str], quoted: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Reference 1.1: each non-option argument quoted and followed by a space, then the
    usage; exit 1; "--" ends the options and a lone "-" is a word (verified against
    upstream: `oomd a b`, `oomd -- -v`, `oomd -i 3 -`)."""
    assert exit_code(argv) == 1
    out, err = capfd.readouterr()
    assert out == ""
    first, _, rest = err.partition("\n")
    assert first == "Non-option argument is not supported: " + quoted
    assert rest.startswith(UPSTREAM_USAGE)


# -- interval -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "5x", "-1", "99999999999", "abc", "", "1.5", "٣"])
def test_bad_interval_is_rejected(value: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Reference 1.1: an integer >= 1 with no trailing characters, else
    `Interval not a >0 integer: <arg>` and exit 1 (verified against upstream for 0, 5x,
    -1, abc; upstream aborts on 99999999999, we exit 1)."""
    assert exit_code(["-i", value]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert err == f"Interval not a >0 integer: {value}\n"


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("05", 5), ("2147483647", 2**31 - 1)])
def test_good_interval_is_accepted(value: str, expected: int) -> None:
    """Verified against upstream for 1 and 05."""
    assert parse_args(["-i", value]).interval == expected


@pytest.mark.parametrize(("value", "expected"), [("+5", 5), (" 5", 5)])
def test_interval_is_read_with_stoi_so_sign_and_leading_space_are_accepted(
    value: str, expected: int
) -> None:
    """Upstream Main.cpp reads -i with std::stoi and only rejects values < 1 or with
    characters after the number (verified against upstream: `-i +5` and `-i " 5"`
    run with interval 5)."""
    assert parse_args(["-i", value]).interval == expected


# -- io cost: --device, --ssd-coeffs, --hdd-coeffs ------------------------------------------------


@pytest.fixture
def dev_block(tmp_path: Path) -> str:
    """A fake /sys/dev/block: 8:0 rotational (HDD), 259:0 not (SSD), 9:9 garbage."""
    for dev, rotational in (("8:0", "1\n"), ("259:0", "0\n"), ("9:9", "2\n")):
        queue = tmp_path / "block" / dev / "queue"
        queue.mkdir(parents=True)
        (queue / "rotational").write_text(rotational)
    return str(tmp_path / "block")


def test_device_list_is_typed_from_sysfs(dev_block: str) -> None:
    """Main.cpp parseDevices + Fs::getDeviceType: rotational 1 is HDD, 0 is SSD; empty
    items of the comma list are skipped (Util::split)."""
    opts = parse_args(["--device", "8:0,,259:0"], dev_block)
    assert opts.io_devices == {"8:0": DeviceType.HDD, "259:0": DeviceType.SSD}
    assert parse_args([], dev_block).io_devices == {}


@pytest.mark.parametrize("device", ["7:7", "9:9", "8:0,7:7"])
def test_unknown_or_unreadable_device_exits_1(
    device: str, dev_block: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageExit) as excinfo:
        parse_args(["--device", device], dev_block)
    assert excinfo.value.code == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith("Invalid devices: ")
    assert "rotational" in err


def test_coefficients_are_read_like_stod_with_zeros_for_missing_values() -> None:
    """Main.cpp parseCoeffs: up to 6 values in the documented order, missing ones 0,
    extra ones ignored, a numeric prefix is enough (stod)."""
    opts = parse_args(["--ssd-coeffs", "1,2.5e-3,,0x10", "--hdd-coeffs=1,2,3,4,5,6,7x,8"])
    assert opts.ssd_coeffs == IoCostCoeffs(1.0, 2.5e-3, 16.0, 0.0, 0.0, 0.0)
    assert opts.hdd_coeffs == IoCostCoeffs(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    defaults = parse_args([])
    assert defaults.ssd_coeffs == DEFAULT_SSD_COEFFS
    assert defaults.hdd_coeffs == DEFAULT_HDD_COEFFS
    assert parse_args(["--hdd-coeffs", "3abc"]).hdd_coeffs == IoCostCoeffs(3.0)


def test_help_states_the_default_coefficients() -> None:
    from oomd.cgroup.iocost import parse_coeffs
    from oomd.cli import USAGE

    ssd = USAGE.split("Defaults:\nSSD ", 1)[1].split(";", 1)[0]
    hdd = USAGE.split("; HDD ", 1)[1].split(".\n", 1)[0]
    assert parse_coeffs(ssd) == DEFAULT_SSD_COEFFS
    assert parse_coeffs(hdd) == DEFAULT_HDD_COEFFS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ssd-coeffs", "1,x"], "Invalid SSD coefficients: "),
        (["--hdd-coeffs", "abc"], "Invalid HDD coefficients: "),
        (["--hdd-coeffs", "1e999"], "Invalid HDD coefficients: "),  # upstream aborts
    ],
)
def test_bad_coefficients_exit_1(
    argv: list[str], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(argv) == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith(message)


# -- the installed entry points -------------------------------------------------------------------

VALID_CONFIG = {
    "rulesets": [
        {
            "name": "protection",
            "detectors": [
                [
                    "pressure",
                    {
                        "name": "pressure_above",
                        "args": {
                            "cgroup": "workload.slice",
                            "resource": "memory",
                            "threshold": "60",
                            "duration": "30",
                        },
                    },
                ]
            ],
            "actions": [
                {
                    "name": "kill_by_memory_size_or_growth",
                    "args": {"cgroup": "workload.slice/*", "dry": True},
                }
            ],
        }
    ]
}


def console_script() -> Path:
    path = Path(sys.executable).parent / "oomd"
    if not path.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    return path


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False
    )


@pytest.fixture
def fake_fs(tmp_path: Path) -> Path:
    """A directory standing in for the cgroup fs (never the host's)."""
    fs = tmp_path / "cgroup"
    (fs / "workload.slice").mkdir(parents=True)
    (fs / "cgroup.controllers").write_text("cpu io memory pids\n")
    return fs


def test_python_m_oomd_prints_the_version(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "oomd", "-v"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"v{__version__}\n"


def test_console_script_accepts_a_valid_config(tmp_path: Path, fake_fs: Path) -> None:
    config = tmp_path / "oomd.json"
    config.write_text(json.dumps(VALID_CONFIG))
    result = run([str(console_script()), "-c", str(config), "-f", str(fake_fs)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("Config is valid\n")


def test_console_script_rejects_an_invalid_config(tmp_path: Path, fake_fs: Path) -> None:
    config = tmp_path / "bad.json"
    bad = json.loads(json.dumps(VALID_CONFIG))
    bad["rulesets"][0]["detectors"][0][1]["args"]["resource"] = "cpu"
    config.write_text(json.dumps(bad))
    result = run([str(console_script()), "-c", str(config), "-f", str(fake_fs)], tmp_path)
    assert result.returncode == 1
    assert "Config is not valid" in result.stderr
    assert f'{config}: ruleset "protection"' in result.stderr
    assert 'arg "resource"' in result.stderr


def test_console_script_rejects_a_json_syntax_error_with_exit_1(
    tmp_path: Path, fake_fs: Path
) -> None:
    """Reference 2.6: upstream aborts (exit 134) on a JSON syntax error; we exit 1
    naming file, line and column."""
    config = tmp_path / "broken.json"
    config.write_text('{\n  "rulesets": [,]\n}\n')
    result = run([str(console_script()), "-c", str(config), "-f", str(fake_fs)], tmp_path)
    assert result.returncode == 1
    assert f"{config}:2:" in result.stderr


def test_console_script_usage_error_exits_1(tmp_path: Path) -> None:
    result = run([str(console_script()), "--bogus"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("oomd: unrecognized option '--bogus'\n")


def test_a_first_argument_naming_a_subcommand_runs_it(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """``oomd NAME ARGS``: the subcommand's main gets the rest of the command line."""
    import sys
    import types

    from oomd import cli, commands

    seen: list[list[str]] = []
    module = types.ModuleType("oomd.commands._hello")

    def hello(argv: Sequence[str]) -> int:
        seen.append(list(argv))
        return 7

    module.main = hello  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "oomd.commands._hello", module)
    monkeypatch.setitem(commands.SUBCOMMANDS, "hello", ("_hello", "say hello"))
    assert cli.main(["hello", "-C", "x", "--json"]) == 7
    assert seen == [["-C", "x", "--json"]]
    # An upstream command line is unchanged: an unknown positional is still an error.
    assert cli.main(["nosuch"]) == 1
    assert 'Non-option argument is not supported: "nosuch"' in capfd.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "  hello" in capfd.readouterr().out
