"""The pull agent: converge every target on what git says.

    triggers (interval + jitter, watchdog, SIGHUP, webhook)
        └─► Agent.tick(): one ``git ls-remote``; for each target whose tracked ref moved
            and that is neither pinned nor suspended:
                build → gate (links) → publish → check (URLs + marker) → record → notify
            every ``drift_every`` ticks: verify each target, repair or alert

Modules: ``loop`` (the Agent and its tick), ``runner`` (once or forever), ``refs``
(ls-remote, tracked refs), ``memory`` (the local state file), ``gates``, ``checks``,
``drift``, ``notify``, ``metrics``, ``triggers``, ``webhook``, ``log``. Nothing heavy is
imported on an idle tick.
"""
