"""Example third-party oomd plugins (docs/writing_a_plugin.md).

* ``near_memory_limit`` (a detector): a cgroup has used at least ``percent`` % of its
  ``memory.max`` for ``duration`` seconds.
* ``kill_by_process_count`` (a kill plugin): kill the cgroup with the most processes.
"""
