"""sitedeploy's incremental MkDocs builder: the code that runs INSIDE the sandbox.

Everything in this folder runs in the site's own environment (its MkDocs, its plugins),
where sitedeploy is not installed: :mod:`sitedeploy.builders.mkdocs` (which runs in
sitedeploy) copies the folder as it is into the trust level's ``mkdocs-lib/`` and starts
``python -m`` on the copy. So these modules import only each other (relatively), the
standard library and MkDocs, never the rest of sitedeploy.

- :mod:`.builder`: the build (``python -m ... --config-file mkdocs.yml --cache DIR``);
- :mod:`.keys`: what a page's render depends on;
- :mod:`.tracking`: what a page read of other pages while it rendered;
- :mod:`.cache`, :mod:`.pack`: the renders and search entries kept between builds.
"""
