"""The peer harness drives real baresip, linphonec, kamailio and SIPp processes."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from peers import Baresip, Kamailio, Sipp, free_port, free_port_block

pytestmark = pytest.mark.peer


def test_free_ports_are_bindable_and_blocks_even() -> None:
    assert 1024 < free_port() < 65536
    assert free_port_block(10) % 2 == 0


def test_baresip_calls_baresip_sends_rfc4733_digits_and_hangs_up(
    baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    callee = baresip("callee", answermode="auto", record_dir=tmp_path / "rec").start()
    caller = baresip("caller").start()
    caller.dial(callee.uri)
    caller.wait_event("CALL_ESTABLISHED")
    callee.wait_event("CALL_ESTABLISHED")
    caller.send_digits("123#")
    pressed = [callee.wait_event("CALL_DTMF_START", timeout=5)["param"] for _ in "123#"]
    assert pressed == list("123#")
    caller.hangup()
    callee.wait_event("CALL_CLOSED")
    callee.close()
    heard = callee.recordings("dec")
    assert heard, "sndfile.so wrote no recording"
    with wave.open(str(heard[0])) as recording:
        assert recording.getframerate() == 8000 and recording.getnframes() > 0


def test_kamailio_registers_baresip_with_digest_auth(
    kamailio: Callable[..., Kamailio], baresip: Callable[..., Baresip]
) -> None:
    registrar = kamailio("registrar", user="engine", password="secret").start()
    good = baresip("good", user="engine", registrar=registrar.address, password="secret").start()
    wrong = baresip("wrong", user="engine", registrar=registrar.address, password="nope").start()
    assert good.wait_registration() == "OK"
    assert wrong.wait_registration() == "ERR"


def test_sipp_uac_completes_a_call_against_sipp_uas(sipp: Callable[..., Sipp]) -> None:
    server = sipp("uas", builtin="uas").serve()
    result = sipp("uac", builtin="uac").run(server.uri, calls=2)
    assert result.exit_code == 0, result.output[-2000:]
    assert (result.successful, result.failed) == (2, 0)
