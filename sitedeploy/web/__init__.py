"""The status page: what is live, what needs attention, and why (``/``, ``/status.json``, badges).

:mod:`.model` is the typed report and its JSON schema, :mod:`.gather` builds it from what the
targets and the agent's state folder say, :mod:`.render` turns it into HTML (Jinja2, autoescaped)
and SVG badges, and :mod:`.server` serves them on the agent's bounded HTTP server
(:mod:`sitedeploy.agent.httpserver`) or from ``sitedeploy status --serve``.
"""
