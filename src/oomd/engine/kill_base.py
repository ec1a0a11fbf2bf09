"""The kill core shared by every kill plugin (upstream's ``BaseKillPlugin``).

A kill plugin supplies only a ranking (``rank``) and its "Picked" log line
(``pick_reason``). This module owns the rest: candidate lookup, recursive descent
honouring ``memory.oom.group``, skipping empty cgroups, the daemon's own cgroup guard,
dry runs, xattrs, the kmsg kill line, stats and the pause after a kill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from oomd import events, log, stats
from oomd.cgroup.context import INT64_MAX, CgroupContext, KillPreference, OomdContext, fmt_mb
from oomd.cgroup.fs import ZERO_PRESSURE
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.engine import ladder as kill_ladder
from oomd.engine.args import (
    non_negative,
    one_of,
    parse_bool,
    parse_cgroups,
    parse_float,
    parse_string,
    parse_unsigned_int,
    require_cgroups,
)
from oomd.engine.plugin import Action, Arg, ArgError, PluginRet, arg
from oomd.engine.prekill import PrekillHookInvocation
from oomd.engine.victims import protecting_pattern, with_config_preferences
from oomd.kill import new_kill_uuid, record_kill_done, record_kill_start
from oomd.trusted import Untrusted, read_root_owned
from oomd.typeshim import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any

#: Context dumps show at most this many cgroups unless the plugin's ``debug`` is set
#: (upstream dumps every non-negligible candidate, which at 10,000 cgroups is 60,000
#: log lines per kill attempt).
DUMP_LIMIT = 10
#: ... found among at most this many of the best-ranked candidates.
DUMP_SCAN_LIMIT = 100

#: At most this much of the kmemalloc profile is copied to kmsg after a kill.
KMEMALLOC_LIMIT = 1 << 20


def fmt_float(value: float) -> str:
    """C++ ostream's default float formatting (6 significant digits)."""
    return f"{value:g}"


def dump_cgroups(ctx: OomdContext, cgroups: Sequence[CgroupContext], skip_negligible: bool) -> None:
    """Upstream's "Dumping OomdContext" block for a ranked list of cgroups."""
    log.info("Dumping OomdContext: ", depth=2)
    shown = 0
    mem_min = ctx.system.meminfo_value("MemTotal") // 1000
    swap_min = ctx.system.meminfo_value("SwapTotal") // 1000
    for index, cg in enumerate(cgroups):
        if skip_negligible and (shown == DUMP_LIMIT or index == DUMP_SCAN_LIMIT):
            # Bounded: telling a negligible cgroup reads two more files (io.pressure,
            # memory.swap.current), which for 10,000 candidates is 20,000 reads per
            # kill attempt.
            log.info(
                f"... more cgroups not shown (set debug=true to see all {len(cgroups)})",
                depth=2,
            )
            break
        mp = cg.mem_pressure()
        io = cg.io_pressure()
        current = cg.current_usage() or 0
        average = cg.average_usage() or 0
        swap = cg.swap_usage() or 0
        if skip_negligible:
            pressures = ((mp.avg10, mp.avg60, mp.avg300) if mp else ()) + (
                (io.avg10, io.avg60, io.avg300) if io else ()
            )
            if not (
                any(p >= 1 for p in pressures)
                or current > mem_min
                or average > mem_min
                or swap > swap_min
            ):
                continue
        shown += 1
        m = mp or ZERO_PRESSURE
        i = io or ZERO_PRESSURE
        log.info(f"name={cg.path.relative}", depth=2)
        log.info(
            f"  pressure={fmt_float(m.avg10)}:{fmt_float(m.avg60)}:{fmt_float(m.avg300)}-"
            f"{fmt_float(i.avg10)}:{fmt_float(i.avg60)}:{fmt_float(i.avg300)}",
            depth=2,
        )
        high = cg.memory_high()
        high_tmp = cg.memory_high_tmp()
        maximum = cg.memory_max()
        log.info(
            f"  mem={current >> 20}MB mem_avg={average >> 20}MB mem_low={(cg.memory_low() or 0) >> 20}MB"
            f" mem_min={(cg.memory_min() or 0) >> 20}MB"
            f" mem_high={(INT64_MAX if high is None else high) >> 20}MB"
            f" mem_high_tmp={(INT64_MAX if high_tmp is None else high_tmp) >> 20}MB"
            f" mem_max={(INT64_MAX if maximum is None else maximum) >> 20}MB"
            f" mem_prot={(cg.memory_protection() or 0) >> 20}MB anon={(cg.anon_usage() or 0) >> 20}MB"
            f" swap_usage={swap >> 20}MB",
            depth=2,
        )
        log.info(
            f"  io_cost_cumulative={fmt_float(cg.io_cost_cumulative() or 0.0)}"
            f" io_cost_rate={fmt_float(cg.io_cost_rate() or 0.0)}",
            depth=2,
        )
        log.info(
            f"  pg_scan_cumulative={cg.pg_scan_cumulative() or 0} pg_scan_rate={cg.pg_scan_rate() or 0}",
            depth=2,
        )
        log.info(f"  kill_preference={cg.kill_preference().name}", depth=2)


class HasPreference(Protocol):
    def kill_preference(self) -> KillPreference: ...


V = TypeVar("V", bound=HasPreference)


def sort_with_preferences(cgroups: Sequence[V], key: Callable[[V], Any]) -> list[V]:
    """Descending by (kill preference, key): any PREFER beats any NORMAL beats any AVOID,
    the key orders within a class. Ties keep input (path) order, so equal candidates are
    chosen deterministically, the smallest path first (upstream's order is arbitrary)."""
    return sorted(cgroups, key=lambda c: (int(c.kill_preference()), key(c)), reverse=True)


_Candidate = tuple[CgroupContext, list[CgroupContext]]
#: A candidate kept across ticks by path and inode: (path, inode, peers).
_Frozen = tuple[tuple[CgroupPath, int], list[tuple[CgroupPath, int]]]


class _Result(Enum):
    SUCCESS = 1
    FAILED = 2
    DEFER = 3


def _freeze(candidate: _Candidate) -> _Frozen:
    cg, peers = candidate
    return (cg.path, cg.inode), [(p.path, p.inode) for p in peers]


def _thaw(ctx: OomdContext, frozen: _Frozen) -> _Candidate | None:
    """The candidate in this tick's context, or None if it is gone or re-created."""

    def find(ref: tuple[CgroupPath, int]) -> CgroupContext | None:
        cg = ctx.get(ref[0])
        return cg if cg is not None and cg.inode == ref[1] else None

    target = find(frozen[0])
    if target is None:
        return None
    peers = [p for p in (find(ref) for ref in frozen[1]) if p is not None]
    return target, peers


class _Pending(NamedTuple):
    """A kill waiting for its prekill hook: the victim and the rest of the DFS stack."""

    invocation: PrekillHookInvocation
    victim: _Frozen
    stack: list[_Frozen]


class KillPlugin(Action):
    """Base class of every kill plugin."""

    _pending: _Pending | None = None
    #: A victim between its first signal and SIGKILL (``kill_signal``/``grace_period``).
    _ladder: kill_ladder.Ladder | None = None

    # The args every kill plugin has; a kill plugin declares its own after them.
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    recursive: bool = arg(parse_bool, default=False)
    post_action_delay: int | None = arg(parse_unsigned_int, default=None)
    dry: bool = arg(parse_bool, default=False)
    always_continue: bool = arg(parse_bool, default=False)
    debug: bool = arg(parse_bool, default=False)
    kernelkill: bool = arg(parse_bool, default=False)
    reap_memory: bool = arg(parse_bool, default=True)
    log_kmemalloc_prekill: bool = arg(parse_bool, default=False)
    # Gentler kills and targeting (issue 17; docs/kill-ladder.md).
    kill_signal: str = arg(kill_ladder.parse_signal, default=kill_ladder.SIGKILL)
    grace_period: float = arg(parse_float, default=0.0, validate=non_negative)
    prefer: tuple[CgroupPattern, ...] = arg(
        parse_cgroups, default=(), parse_list=kill_ladder.parse_cgroup_list
    )
    avoid: tuple[CgroupPattern, ...] = arg(
        parse_cgroups, default=(), parse_list=kill_ladder.parse_cgroup_list
    )
    kill_mode: str = arg(
        parse_string, default="cgroup", validate=one_of("cgroup", "largest_process")
    )

    def setup(self) -> None:
        require_cgroups(self)
        kill_ladder.check_args(self.kill_signal, self.grace_period, ArgError)
        self.env.stats.set(stats.KILLS, self.env.stats.get(stats.KILLS) or 0)

    # -- what a heuristic provides -----------------------------------------------

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        """Best victim first; may drop cgroups that must not be killed."""
        raise NotImplementedError

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        """The "Picked ..." log line explaining why ``target`` was chosen (usually
        :meth:`picked` followed by the heuristic's reason)."""
        raise NotImplementedError

    @staticmethod
    def picked(target: CgroupContext) -> str:
        """The start every upstream "Picked" line shares: path and usage in MiB."""
        return f'Picked "{target.path.relative}" ({fmt_mb(target.current_usage() or 0)}MB)'

    # -- shared machinery ---------------------------------------------------------

    @property
    def is_dry(self) -> bool:
        return self.dry or self.env.dry_run

    def candidates(self, ctx: OomdContext) -> list[CgroupContext]:
        return ctx.resolve(self.cgroup, self.ruleset_cgroup)

    def prerun_on_cgroups(self, ctx: OomdContext, fn: Callable[[CgroupContext], object]) -> None:
        """Apply ``fn`` to every candidate (and, when recursive, every descendant down to
        a ``memory.oom.group`` cgroup) so per-tick history is kept for ranking."""
        stack = list(self.candidates(ctx))
        while stack:
            cg = stack.pop()
            if self.recursive and not cg.oom_group():
                stack.extend(ctx.children(cg))
            fn(cg)

    def run(self, ctx: OomdContext) -> PluginRet:
        if self._ladder is not None:
            result = self._ladder_tick(ctx)
        elif self._pending is not None:
            result = self._resume(ctx)
        else:
            result = self.try_to_kill_something(ctx, self.candidates(ctx))
        if result is _Result.DEFER:
            return PluginRet.ASYNC_PAUSED
        if result is _Result.FAILED or self.always_continue:
            return PluginRet.CONTINUE
        ruleset = ctx.invoking_ruleset
        if ruleset is not None and self.post_action_delay is not None:
            ruleset.pause_actions(self.post_action_delay)
        return PluginRet.STOP

    def try_to_kill_something(self, ctx: OomdContext, initial: list[CgroupContext]) -> _Result:
        if self.kill_signal != kill_ladder.SIGKILL:
            for cg in initial:  # a ladder a restarted daemon left pending goes first
                pending = kill_ladder.resume(self, ctx, cg)
                if pending is not None:
                    self._ladder = pending
                    return self._ladder_tick(ctx)
        ranked = self._ranked(ctx, initial)
        dump_cgroups(ctx, ranked, not self.debug)
        return self._kill_from(ctx, [(c, ranked) for c in reversed(ranked)])

    def _next_victim(
        self, ctx: OomdContext, stack: list[_Candidate], dry_look: bool = False
    ) -> _Candidate | None:
        """Pop ``stack`` (best candidate on top) down to the next cgroup a kill would
        be tried on: depth-first into children when recursive, skipping empty cgroups
        and oomd's own. ``dry_look`` (``oomd status``): the same walk with no log and
        no context dump."""
        while stack:
            cg, peers = stack.pop()
            if self.recursive and not cg.oom_group():
                children = ctx.children(cg)
                if children:
                    ranked_children = self._ranked(ctx, children)
                    if not dry_look:
                        log.info(self.pick_reason(ctx, cg, peers))
                        dump_cgroups(ctx, ranked_children, not self.debug)
                    stack.extend((c, ranked_children) for c in reversed(ranked_children))
                    continue
            # Nothing to kill in an empty cgroup, or one whose anon memory is gone
            # already (e.g. killed earlier but stuck exiting): skip, as upstream HEAD.
            if cg.is_populated() is False or cg.anon_usage() == 0:
                continue
            if self.is_protected(ctx, cg):
                if not dry_look:
                    log.info(f"Not killing {cg.path.absolute}: it contains oomd itself")
                continue
            return cg, peers
        return None

    def _kill_from(self, ctx: OomdContext, stack: list[_Candidate]) -> _Result:
        """Depth-first with backtracking: if the best victim cannot be killed, try its
        next-best sibling, then the parent's next-best sibling, and so on. The best
        candidate is on top of ``stack``."""
        while (victim := self._next_victim(ctx, stack)) is not None:
            cg, peers = victim
            log.info(self.pick_reason(ctx, cg, peers))
            if not self._past_hook_deadline(ctx) and ctx.prekill_hook_handler is not None:
                invocation = ctx.prekill_hook_handler(cg, ctx.action_context)
                if invocation is not None and not invocation.finished():
                    self._pending = _Pending(
                        invocation, _freeze((cg, peers)), [_freeze(e) for e in stack]
                    )
                    return _Result.DEFER
            result = self._deliver(ctx, cg)
            if result is not _Result.FAILED:
                return result
        return _Result.FAILED

    @staticmethod
    def _past_hook_deadline(ctx: OomdContext) -> bool:
        deadline = ctx.action_context.prekill_hook_deadline
        return deadline is not None and ctx.now() > deadline

    def _resume(self, ctx: OomdContext) -> _Result:
        """A later tick of a kill that waits for its prekill hook."""
        pending = self._pending
        assert pending is not None
        ruleset = ctx.action_context.ruleset_name
        if pending.invocation.finished():
            log.info(f"pre-kill hook finished for Ruleset={ruleset}")
        elif self._past_hook_deadline(ctx):
            log.info(f"pre-kill hook timed out for Ruleset={ruleset}")
            pending.invocation.abandon()
        else:
            log.info(f"Still running pre-kill hook for Ruleset={ruleset}")
            return _Result.DEFER
        self._pending = None
        victim = _thaw(ctx, pending.victim)
        if victim is None:
            # Someone removed (or re-created) the victim meanwhile: consider the job
            # done; if pressure persists the detectors fire again.
            return _Result.FAILED
        result = self._deliver(ctx, victim[0])
        if result is not _Result.FAILED:
            return result
        stack: list[_Candidate] = []
        for frozen in pending.stack:
            thawed = _thaw(ctx, frozen)
            if thawed is None:
                # Gone: whatever lay below it in the stack is moot too (as upstream).
                stack.clear()
            else:
                stack.append(thawed)
        return self._kill_from(ctx, stack)

    # -- issue 17: protected_cgroups, prefer/avoid, the kill ladder, kill_mode --------

    def _ranked(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        """The heuristic's ranking of the cgroups ``protected_cgroups`` leaves, with
        the config's ``prefer``/``avoid`` applied over the xattrs."""
        protected = self.env.protected_cgroups
        if protected:
            cgroups = [
                c
                for c in cgroups
                if protecting_pattern(protected, c.path, descendants=False) is None
            ]
        return with_config_preferences(self.rank(ctx, cgroups), self.prefer, self.avoid)

    def _deliver(self, ctx: OomdContext, cg: CgroupContext) -> _Result:
        """Kill ``cg`` as configured: upstream's SIGKILL of the whole cgroup, or the
        first signal of a ladder, or only its largest process."""
        if self.env.protected_cgroups:
            pattern = protecting_pattern(self.env.protected_cgroups, cg.path)
            if pattern is not None:
                log.info(
                    f"Not killing {cg.path.absolute}: protected_cgroups pattern {pattern.text}"
                )
                return _Result.FAILED
        if self.kill_signal == kill_ladder.SIGKILL and self.kill_mode == "cgroup":
            return _Result.SUCCESS if self.kill_and_log(ctx, cg) else _Result.FAILED
        if not cg.is_valid():
            log.info(
                f"Not killing {cg.path.absolute}: it was removed or re-created since it was ranked"
            )
            return _Result.FAILED
        pending = (
            kill_ladder.resume(self, ctx, cg) if self.kill_signal != kill_ladder.SIGKILL else None
        )
        started = pending if pending is not None else kill_ladder.start(self, ctx, cg)
        if isinstance(started, kill_ladder.Ladder):
            self._ladder = started
            return self._ladder_tick(ctx) if pending is not None else _Result.DEFER
        return _Result.SUCCESS if started else _Result.FAILED

    def _ladder_tick(self, ctx: OomdContext) -> _Result:
        ladder = self._ladder
        assert ladder is not None
        if kill_ladder.tick(self, ctx, ladder) is kill_ladder.Step.WAIT:
            return _Result.DEFER
        self._ladder = None
        return _Result.SUCCESS

    # -- oomd status: a dry look at the same ranking ----------------------------------

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        """The numbers this plugin's ``rank`` orders ``cg`` by among ``peers``, for
        ``oomd status`` (read-only: values the tick has read already). The default:
        memory usage and kill preference; built-in heuristics add theirs."""
        return {"usage": cg.current_usage() or 0, "preference": cg.kill_preference().name}

    def explain(self, ctx: OomdContext, top: int = 3) -> dict[str, Any]:
        """The ``top`` best-ranked candidates with their ranking numbers, and the
        cgroup a kill would be tried on now (``rank`` and the kill path's own walk,
        with no kill, log, xattr or state change) with the plugin's ``pick_reason``."""
        result: dict[str, Any] = {"dry": self.is_dry}
        if self._pending is not None:
            result["waiting_for_prekill_hook"] = self._pending.victim[0][0].relative
        if self._ladder is not None:
            result["kill_ladder"] = {
                "cgroup": self._ladder.path,
                "signal": self._ladder.signal_name,
                "sigkill_in_s": round(max(self._ladder.deadline - ctx.now(), 0.0), 1),
            }
        initial = self.candidates(ctx)
        ranked = self._ranked(ctx, initial)
        result["considered"] = len(initial)
        result["top"] = [
            {"cgroup": cg.path.relative, **self.rank_numbers(ctx, cg, ranked)}
            for cg in ranked[:top]
        ]
        victim = self._next_victim(ctx, [(c, ranked) for c in reversed(ranked)], dry_look=True)
        if victim is None:
            result["victim"] = None
        else:
            cg, peers = victim
            result["victim"] = {
                "cgroup": cg.path.relative,
                **self.rank_numbers(ctx, cg, peers),
                "reason": self.pick_reason(ctx, cg, peers),
            }
        return result

    def is_protected(self, ctx: OomdContext, cg: CgroupContext) -> bool:
        own = self.env.own_cgroup
        if own is None:
            return False
        victim = cg.path.absolute
        if own == victim or own.startswith(victim.rstrip("/") + "/"):
            return True
        # Identities, not spellings: the victim is protected if it is the same
        # directory (device, inode) as the daemon's cgroup or one of its ancestors.
        # (Imported here to keep this change to the one method.)
        import os

        try:
            st = os.stat(victim)
        except OSError:
            return False
        path = own
        while True:
            try:
                mine = os.stat(path)
            except OSError:
                pass
            else:
                if (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino):
                    return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def kill_and_log(self, ctx: OomdContext, cg: CgroupContext) -> bool:
        """Kill one cgroup and write the kill line; True if anything was killed."""
        path = cg.path.absolute
        if not cg.is_valid():
            log.info(f"Not killing {path}: it was removed or re-created since it was ranked")
            return False
        dry = self.is_dry
        error: str | None = None
        # A real kill's uuid is the one recorded on the victim (a fresh one per attempt,
        # as upstream); a dry kill records nothing and goes by its action's.
        kill_uuid = ctx.action_context.kill_uuid
        if dry:
            log.info(f"OOMD: In dry-run mode; would have tried to kill {path}")
            killed = 1
        else:
            suffix = " with cgroup.freeze and cgroup.kill" if self.kernelkill else ""
            log.info(f"Trying to kill {path}{suffix}")
            self._log_memory_stat(cg)
            kill_uuid = new_kill_uuid()
            record_kill_start(path, kill_uuid)
            report = self.env.host.killer.kill(path, freeze=self.kernelkill, reap=self.reap_memory)
            killed, error = report.killed, report.error
            if error is None:  # upstream returns before recording a failed kill
                record_kill_done(path, killed)
        rel = cg.path.relative
        if error is not None:
            log.info(f"Failed to kill cgroup {rel}: {error}")
        elif killed == 0:
            log.info(f"No processed killed from {rel}")
        else:
            p = cg.mem_pressure() or ZERO_PRESSURE
            action = ctx.action_context
            line = (
                f"{p.avg10:.2f} {p.avg60:.2f} {p.avg300:.2f} {rel} {cg.current_usage() or 0} "
                f"ruleset:[{action.ruleset_name}] detectorgroup:[{action.detector_group}] "
                f"killer:{'(dry)' if dry else ''}{self.name} v2"
            )
            if not dry:
                self.env.stats.increment(stats.KILLS)
            event = events.KillEvent(
                cgroup=rel,
                cgroup_path=path,
                ruleset=action.ruleset_name,
                detector_group=action.detector_group,
                killer=self.name,
                dry=dry,
                usage=cg.current_usage() or 0,
                pressure=(p.avg10, p.avg60, p.avg300),
                kill_uuid=kill_uuid,
                target=cg,
                line=line,
            )
            self.env.kmsg.write(line, "oomd kill", fields=event.fields())
            if events.subscribers:
                events.publish(event)
            if self.log_kmemalloc_prekill:
                self._copy_kmemalloc_profile()
        return killed > 0

    def _log_memory_stat(self, cg: CgroupContext) -> None:
        stat = cg.memory_stat()
        if stat is None:
            log.info(f"Failed to open {cg.path.absolute}/memory.stat")
            return
        log.info(f"memory.stat for {cg.path.relative}: ")
        for line in stat.lines():
            log.info(line)

    def _copy_kmemalloc_profile(self) -> None:
        """Copy the profile to kmsg: only a regular file owned by root, never through a
        symlink, never blocking on a FIFO planted at the fixed path in /tmp."""
        path = self.env.host.kmemalloc_profiler
        try:
            data = read_root_owned(path, KMEMALLOC_LIMIT)
        except FileNotFoundError:
            return
        except (OSError, Untrusted) as e:
            log.info(f"Not copying {path}: {e}")
            return
        for line in data.decode("utf-8", errors="replace").splitlines():
            self.env.kmsg.write(line, "")


#: KillPlugin's args, for kill plugins that still list ``args = (*KILL_ARGS, ...)``
#: (deprecated: declare the plugin's own args with ``arg()`` instead).
KILL_ARGS: tuple[Arg[Any], ...] = KillPlugin.args
