"""Commands from the central system (`{root}/cmd/{name}`): request/response.

Every request is answered: a reply to the MQTT 5 response topic with the request's correlation
data, or to `{root}/cmd/{name}/reply` when there is none (MQTT 3.1.1). Replies go through the
outbox like every other message, so they survive a broker outage; except the answer to a request
that cannot be read or names no command, which goes out at once (`reply_now`): a flood of bad
requests must not queue in the outbox in front of scan events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from edge_agent.sync.models import CommandRequest, describe, parse_json


class CommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ReplySink(Protocol):
    async def __call__(self, topic: str, payload: dict[str, Any], correlation: bytes | None) -> None: ...


class CommandService:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        reply: ReplySink,
        reply_topic: Callable[[str], str],
        reply_now: ReplySink | None = None,
    ) -> None:
        self._handlers = handlers
        self._reply = reply
        self._reply_now = reply_now or reply
        self.bad_requests = 0
        self._reply_topic = reply_topic
        self.handled = 0
        self._log = structlog.get_logger("edge_agent.sync").bind(component="commands")

    async def handle(
        self, name: str, payload: bytes, response_topic: str | None, correlation: bytes | None
    ) -> dict[str, Any]:
        topic = response_topic if response_topic and not any(c in response_topic for c in "+#") else None
        topic = topic or self._reply_topic(name)
        request_id: Any = None
        try:
            try:
                raw = parse_json(payload)
            except ValueError as exc:
                raise CommandError("bad_request", f"payload is not JSON: {exc}") from None
            if isinstance(raw, dict) and isinstance(raw.get("request_id"), str):
                request_id = raw["request_id"]
            try:
                request = CommandRequest.model_validate(raw)
            except ValidationError as exc:
                raise CommandError("bad_request", describe(exc)) from None
            handler = self._handlers.get(name)
            if handler is None:
                raise CommandError(
                    "unknown_command", f"no command {name!r}; known: {', '.join(sorted(self._handlers))}"
                )
            data = await handler(request.args)
            reply: dict[str, Any] = {"request_id": request_id, "status": "ok", "data": data}
        except CommandError as exc:
            reply = {
                "request_id": request_id,
                "status": "error",
                "error": {"code": exc.code, "message": exc.message},
            }
        except Exception as exc:
            self._log.exception("command.failed", command=name, request_id=request_id)
            reply = {
                "request_id": request_id,
                "status": "error",
                "error": {"code": "internal", "message": repr(exc)},
            }
        self.handled += 1
        unreadable = reply["status"] == "error" and reply["error"]["code"] in (
            "bad_request",
            "unknown_command",
        )
        if unreadable:
            self.bad_requests += 1
            # one line per thousand in a flood; each is still answered
            if self.bad_requests <= 10 or self.bad_requests % 1000 == 0:
                self._log.warning("command.bad_request", command=name, error=reply["error"],
                                  bad_requests=self.bad_requests)  # fmt: skip
            await self._reply_now(topic, reply, correlation)
            return reply
        self._log.info("command.answered", command=name, request_id=request_id, status=reply["status"],
                       error=reply.get("error"))  # fmt: skip
        await self._reply(topic, reply, correlation)
        return reply


def require(args: dict[str, Any], name: str, kind: type) -> Any:
    value = args.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CommandError("bad_args", f"args.{name} must be {kind.__name__}")
    return value
