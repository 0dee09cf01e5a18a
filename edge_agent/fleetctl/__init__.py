"""`edge-fleet`, the fleet admin's tool: the same MQTT contract as the central system, seen from
the admin's side.

- cli.py: the argument parser and `main`; broker options first.
- client.py: `Fleet`, one MQTT connection that gathers retained states and replies, and the
  fan-out of a command or a desired config to many agents with one deadline.
- commands.py: ls, cmd, tail, manifest push.
- update.py: `update` to an agent or a site, a canary first, followed on `software`.
- release.py: `release keygen`, `build`, `inspect`: bundles made on an admin's machine for the
  docks' platform (the work itself is in edge_agent.update.build and .inspect).
"""
