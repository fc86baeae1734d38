"""sitedeploy: GitOps for documentation and static sites.

Pipeline stages, one module each, dependencies pointing down the list:
config → source → build → images → manifest → plan → publish → state → commands → agent → cli.
"""

__version__ = "0.1.0"
