"""Log lines as text or JSON, each naming the request it belongs to.

The HTTP middleware sets REQUEST_ID (`GET-123`: the method and a per-process counter, as
Synapse names requests) while it handles a request, and the tasks a request starts inherit it;
`RequestIdFilter` on the output handler copies it onto every record (`-` outside requests), so
every line a request causes, the access log line included, carries the same ID.

`json`: one object per line, with `time` (ISO 8601, UTC), `level`, `logger`, `request`,
`message`, the record's `extra` fields (the access log's servlet, user, status...) and
`exc_info` for a traceback. Pure stdlib and orjson, no I/O of its own: the bottom of the layers.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
from typing import IO, Any

import orjson

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("chatgo_request_id", default="-")
# The logger of the access log lines (one per request, at INFO).
ACCESS_LOGGER = "chatgo.access"

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(request)s: %(message)s"
# What every LogRecord has: the rest of a record's attributes are `extra` fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                      "request"}


class RequestIdFilter(logging.Filter):
    """Adds `record.request`: the ID of the request being handled, or `-`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request": getattr(record, "request", None) or REQUEST_ID.get(),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing to `stream` (stderr by default) in `log_format` (text or json)."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def setup_logging(level: str, log_format: str = "text", *, access_log: bool = True) -> None:
    """The process's logging: one handler on the root logger, replacing any other."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(log_handler(log_format))
    root.setLevel(level.upper())
    if not access_log:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
