"""The dock edge agent: scans, prints and syncs at a return-parcel dock."""


def _installed_version(source: str) -> str:
    """The version pip installed (a release's wheel names it in its `.dist-info` folder beside the
    package), so what the agent reports is what the launcher installed; `source` for a checkout."""
    import os

    site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = "dock_edge_agent-"
    try:
        for name in os.listdir(site):
            if name.startswith(prefix) and name.endswith(".dist-info"):
                return name[len(prefix) : -len(".dist-info")]
    except OSError:
        pass
    return source


__version__ = _installed_version("0.1.0")
