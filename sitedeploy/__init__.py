"""sitedeploy: GitOps for documentation and static sites.

The rooms of this package, in the order a deploy passes through them:

    config/     deploy.toml into frozen dataclasses (deploy_toml, targets, agent, limits),
                the places targets own, the build settings of a commit (from_git)
    source/     the content repository: a bare mirror, refs, commits (repository), git runs
                (gitrun), signatures, tree checks, which tag is newest (tag_order)
    build/      build.plan(): a commit's build settings, sites, key and signature (planning);
                each site built or reused (sites), the release tree (release_tree, mounts),
                its links checked (linkgate)
      builders/ one per tool: mkdocs and properdocs (run in sitedeploy), mkdocs_incremental/
                (the part that runs inside the sandbox, copied there as a folder), mkdocs2
                (recognised, refused), zensical, static
      cache/    the shared build cache: entries packed, signed and verified, folder or S3 store
      sandbox/  bubblewrap (bwrap), reading what a build wrote (untrusted), cache seals,
                site venvs
      images/   responsive images, decoded in the sandbox
      redirects/ _redirects and _headers checked at build; nginx includes, the CloudFront
                function, removed pages, what serve answers
    release/    manifest, diff (the plan), records on the target, lock, control (pins, marks),
                history, and the transaction every release, rollback, repair and retirement
                takes (transaction, retire)
    targets/    the Target protocol (base): local, ssh/, s3/; memory (tests), dryrun
    versions/   versions and previews: lines of a target under a family root
    commands/   one function per verb: the library API (deploy, rollback, status, verify, ...)
    agent/      the pull loop, triggers, webhook, notifications, metrics
    cli/        click commands around one library call each; serve, scaffold, progress bars
    compare/    one commit built with two engines, and what differs (sitedeploy compare)
    web/        the status page, /status.json and badges
    forge/      deploy results posted to GitHub or GitLab (statuses, one preview comment)

    source -> build.plan -> build -> release.transaction -> target

errors.py (the exception tree), names.py (site and line names) and progress.py are used by
every room.
"""

__version__ = "0.1.0"
