"""Deploy results posted back to the forge (``[forge]``): GitHub and GitLab, self-hosted too.

:mod:`.client` speaks the two REST APIs (bounded: timeouts, rate-limit headers), :mod:`.feedback`
decides what to post when (commit statuses; one preview comment per pull or merge request,
edited in place) and never lets a failure to post fail a deploy.
"""
