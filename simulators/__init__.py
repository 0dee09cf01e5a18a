"""Simulators of the dock's hardware and of the central system. They speak only the wire
(ptys, input_event records, sockets, MQTT) and know nothing of the agent's internals."""
