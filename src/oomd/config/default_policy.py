"""The policy ``oomd`` runs when started without ``-C`` and with no /etc/oomd.json.

It is upstream's desktop example (src/oomd/etc/desktop.json) limited to the plugins
this version has: kill the biggest (or fastest growing) session, user service or system
service when user.slice stays above 60% full memory pressure for 30 s, or system.slice
above 80% for 60 s. Upstream also requires recent reclaim (``memory_reclaim``) and adds
a low-swap ruleset; those join the default policy when their plugins land.
"""

DEFAULT_POLICY_NAME = "<built-in default policy>"

DEFAULT_POLICY_TEXT = """
{
  "rulesets": [
    {
      "name": "user session protection",
      "detectors": [
        [
          "user pressure above 60 for 30s",
          {
            "name": "pressure_above",
            "args": {"cgroup": "user.slice", "resource": "memory", "threshold": "60", "duration": "30"}
          }
        ],
        [
          "system pressure above 80 for 60s",
          {
            "name": "pressure_above",
            "args": {"cgroup": "system.slice", "resource": "memory", "threshold": "80", "duration": "60"}
          }
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
    }
  ]
}
"""
