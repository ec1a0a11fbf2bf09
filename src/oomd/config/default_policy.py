"""The policy ``oomd`` runs when started without ``-C`` and with no /etc/oomd.json.

It is upstream's desktop example (src/oomd/etc/desktop.json): log an overview of
system.slice while it is under memory pressure, and kill the biggest (or fastest
growing) session, user service or system service when user.slice stays above 60% full
memory pressure for 30 s, or system.slice above 80% for 60 s, while the kernel has been
reclaiming memory from it in the last 10 s; and kill the biggest swap user when free
swap drops below 10%.
"""

DEFAULT_POLICY_NAME = "<built-in default policy>"

DEFAULT_POLICY_TEXT = """
{
  "rulesets": [
    {
      "name": "system overview",
      "silence-logs": "engine",
      "detectors": [
        [
          "records system stats",
          {"name": "dump_cgroup_overview", "args": {"cgroup": "system.slice"}}
        ]
      ],
      "actions": [{"name": "continue", "args": {}}]
    },
    {
      "name": "user session protection",
      "detectors": [
        [
          "user pressure above 60 for 30s",
          {
            "name": "pressure_above",
            "args": {"cgroup": "user.slice", "resource": "memory", "threshold": "60", "duration": "30"}
          },
          {"name": "memory_reclaim", "args": {"cgroup": "user.slice", "duration": "10"}}
        ],
        [
          "system pressure above 80 for 60s",
          {
            "name": "pressure_above",
            "args": {"cgroup": "system.slice", "resource": "memory", "threshold": "80", "duration": "60"}
          },
          {"name": "memory_reclaim", "args": {"cgroup": "system.slice", "duration": "10"}}
        ]
      ],
      "actions": [
        {
          "name": "kill_by_memory_size_or_growth",
          "args": {
            "cgroup": "user.slice/user-*.slice/session-*.scope,user.slice/user-*.slice/user@*.service/*,system.slice/*"
          }
        }
      ]
    },
    {
      "name": "protection against low swap",
      "detectors": [
        [
          "free swap goes below 10 percent",
          {"name": "swap_free", "args": {"threshold_pct": "10"}}
        ]
      ],
      "actions": [
        {
          "name": "kill_by_swap_usage",
          "args": {
            "cgroup": "user.slice/user-*.slice/session-*.scope,user.slice/user-*.slice/user@*.service/*,system.slice/*"
          }
        }
      ]
    }
  ]
}
"""
