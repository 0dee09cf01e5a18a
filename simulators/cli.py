"""`edge-sim`: simulators of the dock's hardware and the demo that runs them with the agent."""

from __future__ import annotations

import argparse
import signal
import sys

from simulators import central, demo, hid_scanner, hidpos_scanner, printer, scale, serial_scanner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sim", description="Dock hardware simulators")
    sub = parser.add_subparsers(dest="command", required=True)
    serial_scanner.add_arguments(
        sub.add_parser(
            "serial-scanner", help="a serial barcode scanner on a pty", description=serial_scanner.__doc__
        )
    )
    hid_scanner.add_arguments(
        sub.add_parser(
            "hid-scanner", help="a USB HID scanner (input_event records)", description=hid_scanner.__doc__
        )
    )
    hidpos_scanner.add_arguments(
        sub.add_parser(
            "hidpos-scanner",
            help="a USB HID POS scanner (64-byte input reports)",
            description=hidpos_scanner.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    printer.add_arguments(
        sub.add_parser(
            "printer", help="a ZPL or ESC/POS printer on TCP 9100 or a pty", description=printer.__doc__
        )
    )
    scale.add_arguments(
        sub.add_parser(
            "scale",
            help="a dock scale: MT-SICS, Toledo 8217 or continuous on a pty, HID POS reports into a FIFO",
            description=scale.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    central.add_arguments(
        sub.add_parser(
            "central", help="a simulated central returns system over MQTT", description=central.__doc__
        )
    )
    demo.add_arguments(
        sub.add_parser("demo", help="simulated scanners + the agent, for an operator to watch")
    )
    return parser


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Interrupt:
    """Only the first signal stops: Ctrl-C reaches the whole process group and the demo then
    sends each child SIGTERM, and a second KeyboardInterrupt would break off the unplug that
    removes the pty's link. The later ones are blocked, so one that comes while the interpreter
    shuts down cannot kill it either, and one already caught is passed over. (Not SIG_IGN:
    switching to it while a signal is pending makes CPython print "Signal 15 ignored due to race
    condition".)"""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, _signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "demo":  # the demo stops its children itself (demo.run)
        # SIGTERM and SIGHUP stop a simulator as Ctrl-C does, so it unplugs: its pty's symlink is
        # removed. Killed with the link left, the link names a pty number the kernel soon gives to
        # another program's pty, and an agent reopening the link would read that one
        interrupt = _Interrupt()
        for signum in STOP_SIGNALS:
            signal.signal(signum, interrupt)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
