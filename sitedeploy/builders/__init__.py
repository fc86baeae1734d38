"""Site builders: code that runs inside a site's build environment (next to MkDocs)."""
