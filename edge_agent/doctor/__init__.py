"""`edge-agent doctor`: checks a station as it stands, for the person who sets up a dock.

Theory of operation: each check is a small function that looks at one thing (the config, a
device, the broker, the clock, the storage, the station page's port) and returns `Check` rows:
`ok`, `warn` (works, but a person should look), or `fail`, each failing row with the fix in one
sentence. Checks run before the daemon ever ran and while it runs, without disturbing it: a
device that another process holds open (the daemon, found through /proc) is never opened, only
its presence and permissions are looked at; a device nobody holds is opened without exclusive
mode and without flushing anything. Permissions are judged for the service's user (`edge-agent`
with the groups systemd/edge-agent.service gives it) where that user exists, else for whoever
runs the doctor. The broker is checked with its own client id, so the agent's session is never
taken over.
"""

from edge_agent.doctor.model import Check, Report
from edge_agent.doctor.run import run_doctor

__all__ = ["Check", "Report", "run_doctor"]
