#!/bin/sh
# A stack light on three GPIO lines, driven from the agent's `feedback:` actions, e.g.
#   feedback:
#     expected: [{type: command, argv: [/etc/edge-agent/stacklight.sh]}]
#     (same for duplicate, unknown, invalid, a receipt's item and extra_item, weight_light, weight_heavy)
# The agent runs it without a shell, with the scan in the environment (EDGE_OUTCOME, EDGE_SEQ...).
# It lights one lamp for STACKLIGHT_ON_S seconds. With libgpiod's gpioset (Debian: gpiod) on the
# chip STACKLIGHT_CHIP; where there is none (a developer's machine), it writes the lamp's name to
# the file STACKLIGHT_STATE instead, so the demo can show it.
set -eu
chip=${STACKLIGHT_CHIP:-gpiochip0}
green=${STACKLIGHT_GREEN:-17}
amber=${STACKLIGHT_AMBER:-27}
red=${STACKLIGHT_RED:-22}
on_s=${STACKLIGHT_ON_S:-1}
case "${EDGE_OUTCOME:-}" in
  expected | item) lamp=green line=$green ;;
  duplicate) lamp=amber line=$amber ;;
  unknown | invalid | extra_item | weight_light | weight_heavy) lamp=red line=$red ;;
  *) exit 0 ;;
esac
if command -v gpioset >/dev/null 2>&1 && [ -e "/dev/$chip" ]; then
  # lit for on_s seconds, then released (gpioset 1.x; the agent's timeout must exceed on_s)
  exec gpioset --mode=time --sec="$on_s" "$chip" "$line=1"
fi
state=${STACKLIGHT_STATE:-/tmp/edge-stacklight}
printf '%s seq=%s order=%s\n' "$lamp" "${EDGE_SEQ:-?}" "${EDGE_ORDER_NUMBER:-}" >"$state"
