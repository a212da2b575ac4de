"""``--log-format json``: one JSON object per log line, with the fields a log pipeline indexes."""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import pytest

from unionhub.logs import JsonFormatter, LogFormat, configure


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("unionhub.test")
    exc_info = None
    if exc:
        try:
            raise RuntimeError("composition failed")
        except RuntimeError as error:
            exc_info = (type(error), error, error.__traceback__)
    return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, args, exc_info, extra=extra)


def test_a_json_line_has_time_level_logger_message_and_the_extra_fields() -> None:
    line = JsonFormatter().format(record("room %s: recording %s stopped", "café", "abc123",
                                         room="café", recordings=["abc123"], path=Path("/var/lib/unionhub")))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "unionhub.test"
    assert entry["message"] == "room café: recording abc123 stopped"
    assert entry["room"] == "café" and entry["recordings"] == ["abc123"]
    assert entry["path"] == "/var/lib/unionhub"  # what JSON cannot hold is written as text
    when = datetime.datetime.fromisoformat(entry["time"])
    assert when.tzinfo is not None and abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) < 60
    assert not {"args", "msg", "levelno", "pathname", "exc_info"} & entry.keys()  # LogRecord internals stay out


def test_an_exception_is_one_field_of_the_same_line() -> None:
    entry = json.loads(JsonFormatter().format(record("composing failed", exc=True)))
    assert entry["message"] == "composing failed"
    assert "RuntimeError: composition failed" in entry["exception"]


def test_configure_json_makes_every_record_a_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("info", LogFormat.JSON)
        logging.getLogger("aiohttp.access").info("GET /healthz 200", extra={"status": 200})
        logging.getLogger("aioice.ice").info("noise an operator does not want")
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [json.loads(line)["message"] for line in lines] == ["GET /healthz 200"]
    assert json.loads(lines[0])["status"] == 200
