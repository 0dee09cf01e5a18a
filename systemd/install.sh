#!/usr/bin/env bash
# Installs the dock edge agent as a systemd service:
#   - a system user and group `edge-agent` (in input, dialout, lp),
#   - the first release: a virtual environment in /opt/edge-agent/releases/VERSION with the agent
#     from this checkout, `releases/current` pointing at it, and /opt/edge-agent/launcher too: the
#     launcher (`edge-agent launch`, what the unit runs) stays in that first release while updates
#     from the fleet install newer ones beside it (docs/operations.md, "Software updates"),
#   - /etc/edge-agent/agent.yaml (from config/example.yaml unless one exists), mode 640,
#   - the state directory /var/lib/edge-agent, the unit and the udev rules.
#
# Usage:  sudo systemd/install.sh            install and enable (then edit the config, start)
#         DESTDIR=/tmp/root systemd/install.sh   stage everything under a root folder (packaging, CI):
#                                                no user is created, systemctl and udevadm are not run
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/edge-agent}
PYTHON=${PYTHON:-python3}

say() { printf 'install: %s\n' "$*"; }

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install: run as root (or set DESTDIR to stage into a folder)" >&2
  exit 1
fi

root=${DESTDIR%/}
mkdir -p "$root$PREFIX" "$root/etc/edge-agent" "$root/var/lib/edge-agent" \
         "$root/etc/systemd/system" "$root/etc/udev/rules.d"

# Keyboard-wedge scanners read any layout through libxkbcommon and the X keyboard
# configuration; dead keys compose through libX11's Compose tables; office printers need ipptool.
if [ -z "$DESTDIR" ]; then
  need=()
  ldconfig -p 2>/dev/null | grep -c 'libxkbcommon\.so\.0' >/dev/null || need+=(libxkbcommon0)
  [ -d /usr/share/X11/xkb/symbols ] || need+=(xkb-data)
  [ -d /usr/share/X11/locale ] || need+=(libx11-data)
  # office printers (transport ipp or cups) are driven through CUPS's ipptool
  command -v ipptool >/dev/null 2>&1 || need+=(cups-ipp-utils)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get install -y -qq "${need[@]}"
  fi
fi

if [ -z "$DESTDIR" ]; then
  if ! getent group edge-agent >/dev/null; then groupadd --system edge-agent; fi
  if ! id edge-agent >/dev/null 2>&1; then
    useradd --system --gid edge-agent --home-dir /var/lib/edge-agent --shell /usr/sbin/nologin \
            --groups input,dialout,lp edge-agent
    say "created user edge-agent"
  fi
else
  # staged: record what a real install would create
  cat > "$root/etc/edge-agent/.user" <<USER
user=edge-agent
group=edge-agent
groups=input,dialout,lp
home=/var/lib/edge-agent
shell=/usr/sbin/nologin
USER
fi

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SRC/pyproject.toml")
[ -n "$VERSION" ] || { echo "install: no version in $SRC/pyproject.toml" >&2; exit 1; }
RELEASES="$PREFIX/releases"
mkdir -p "$root$RELEASES"
if [ -x "$root$RELEASES/$VERSION/bin/edge-agent" ]; then
  say "release $VERSION is installed already in $RELEASES/$VERSION"
else
  say "release $VERSION: virtual environment in $RELEASES/$VERSION"
  "$PYTHON" -m venv "$root$RELEASES/$VERSION"
  "$root$RELEASES/$VERSION/bin/python" -m pip install -q --upgrade pip
  "$root$RELEASES/$VERSION/bin/python" -m pip install -q "$SRC"
  echo "$VERSION" > "$root$RELEASES/$VERSION/.installed"
fi
# the first install: current and the launcher point at this release; a later run of this script
# leaves a fleet-updated `current` alone (the launcher switches it, atomically)
[ -e "$root$RELEASES/current" ] || ln -sfn "$VERSION" "$root$RELEASES/current"
[ -e "$root$PREFIX/launcher" ] || ln -sfn "releases/$VERSION" "$root$PREFIX/launcher"
mkdir -p "$root$PREFIX/docs"
cp "$SRC/docs/"*.md "$SRC/README.md" "$root$PREFIX/docs/"

if [ ! -e "$root/etc/edge-agent/agent.yaml" ]; then
  install -m 0640 "$SRC/config/example.yaml" "$root/etc/edge-agent/agent.yaml"
  say "wrote /etc/edge-agent/agent.yaml from config/example.yaml: edit it before starting"
fi
install -m 0644 "$SRC/systemd/edge-agent.service" "$root/etc/systemd/system/edge-agent.service"
install -m 0644 "$SRC/systemd/99-edge-agent.rules" "$root/etc/udev/rules.d/99-edge-agent.rules"
chmod 0750 "$root/var/lib/edge-agent"

if [ -z "$DESTDIR" ]; then
  chown root:edge-agent /etc/edge-agent/agent.yaml
  chown edge-agent:edge-agent /var/lib/edge-agent
  # the launcher installs releases here and switches `current` (the unit lets it write only here)
  chown -R edge-agent:edge-agent "$RELEASES"
  udevadm control --reload || true
  udevadm trigger || true
  systemctl daemon-reload
  systemctl enable edge-agent.service
  say "enabled edge-agent.service; start it with: systemctl start edge-agent"
else
  say "staged under $root"
fi
