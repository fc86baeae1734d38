"""What the server answers, decided in git: redirects, headers, 404 pages.

Stages, in the order a release meets them:

- :mod:`.rules` and :mod:`.headers`: ``_redirects`` and ``_headers`` (Netlify's syntax) parsed
  and checked line by line; :mod:`.collect` reads them (and mkdocs-redirects' ``redirect_maps``)
  from a site when it is built;
- :mod:`.ruleset`: the release's rules, checked against its files (targets exist, no
  duplicates, no loops), resolved the same way by every server;
- :mod:`.release`: the files generated into the release (``.well-known/sitedeploy/``);
- :mod:`.nginx`: the nginx includes and the snippet ``sitedeploy nginx-config`` prints;
  :mod:`.reload`: the target's ``reload_command`` after a switch;
- :mod:`.serving`: ``sitedeploy serve`` answering the same rules;
- :mod:`.removed`: live pages a deploy removes without a rule (``removed_pages``), checked by
  the transaction before anything is written.

- :mod:`.cloudfront`: the CloudFront Function every release with redirects carries; the S3
  target's redirect objects and object headers are :mod:`sitedeploy.targets.s3.site_rules`.

Versioned roots' canonical links, sitemap index and pages a new version drops are
:mod:`sitedeploy.versions.canonical`, :mod:`sitedeploy.versions.sitemap` and
:mod:`sitedeploy.versions.dropped` (with :mod:`.removed`'s check).

Not yet: precompressed siblings, publishing the CloudFront Function's code through the API.

Errors are :class:`sitedeploy.errors.RulesError` (a build error: nothing is published).
"""
