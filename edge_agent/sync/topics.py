"""Topic names of the contract. The agent never publishes to a topic with `+` or `#`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    site: str
    device: str

    @property
    def root(self) -> str:
        return f"dock/v1/{self.site}/{self.device}"

    @property
    def client_id(self) -> str:
        return f"dock-{self.site}-{self.device}"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def telemetry(self) -> str:
        return f"{self.root}/telemetry"

    @property
    def event_scan(self) -> str:
        return f"{self.root}/event/scan"

    @property
    def event_print(self) -> str:
        return f"{self.root}/event/print"

    @property
    def event_receipt(self) -> str:
        return f"{self.root}/event/receipt"

    @property
    def event_alert(self) -> str:
        return f"{self.root}/event/alert"

    def printer_status(self, printer: str) -> str:
        return f"{self.root}/printer/{printer}/status"

    @property
    def job_print(self) -> str:
        return f"{self.root}/job/print"

    @property
    def cmd_filter(self) -> str:
        return f"{self.root}/cmd/+"

    def cmd_reply(self, name: str) -> str:
        return f"{self.root}/cmd/{name}/reply"

    @property
    def config_desired(self) -> str:
        return f"{self.root}/config/desired"

    @property
    def config_reported(self) -> str:
        return f"{self.root}/config/reported"

    @property
    def software(self) -> str:
        return f"{self.root}/software"

    @property
    def manifest(self) -> str:
        return f"dock/v1/{self.site}/manifest"

    @property
    def manifest_request(self) -> str:
        return f"{self.root}/manifest/request"

    def subscriptions(self) -> list[str]:
        return [self.job_print, self.cmd_filter, self.config_desired, self.manifest]

    def filter_of(self, topic: str) -> str:
        """The subscription a message arrived through (what alerts are counted by)."""
        for sub in self.subscriptions():
            if sub == topic or (
                sub.endswith("/+") and topic.startswith(sub[:-1]) and "/" not in topic[len(sub) - 1 :]
            ):
                return sub
        return topic

    def command_name(self, topic: str) -> str | None:
        prefix = f"{self.root}/cmd/"
        if topic.startswith(prefix):
            name = topic[len(prefix) :]
            if name and "/" not in name:
                return name
        return None
