"""Real SIP peers for end-to-end tests: baresip, linphonec, SIPp and kamailio (Debian packages).

Every peer gets its own ports and working directory, runs under a watchdog that kills it by PID
after ``lifetime`` seconds, and is stopped by PID on :meth:`close` (some of them ignore ``quit``
or SIGTERM after a call). Methods block; from an asyncio test that runs voxflow in the same loop,
call them through ``asyncio.to_thread`` so the loop keeps serving the peer.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


class PeerError(AssertionError):
    """A peer did not do what the test expected (did not start, no such event in time ...)."""


# -- ports ---------------------------------------------------------------------------------------


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that is free for both UDP and TCP right now."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
        if _is_free(port, socket.SOCK_DGRAM) and _is_free(port, socket.SOCK_STREAM):
            return port


def free_sip_port() -> int:
    """A free port whose successor is free for TCP too: baresip binds SIP/TLS on port + 1."""
    while True:
        port = free_port()
        if port < 65535 and _is_free(port + 1, socket.SOCK_STREAM):
            return port


def free_port_block(size: int) -> int:
    """First port of ``size`` consecutive UDP ports (even first port) that are all free now."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - size) & ~1
        if all(_is_free(port, socket.SOCK_DGRAM) for port in range(base, base + size)):
            return base
    raise PeerError(f"no block of {size} free UDP ports found")


def _is_free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def write_wav(path: Path, seconds: float, rate: int = 8000, tone_hz: float | None = None) -> Path:
    """A mono 16-bit WAV: silence, or a quiet sine so recordings show the audio flowed."""
    import math

    frames = bytearray()
    for n in range(int(seconds * rate)):
        value = int(3000 * math.sin(2 * math.pi * tone_hz * n / rate)) if tone_hz else 0
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


# -- processes -----------------------------------------------------------------------------------


class _Process:
    """A child process with its output in a log file, a kill-by-PID watchdog and stop()."""

    def __init__(
        self, argv: list[str], *, cwd: Path, log: Path, lifetime: float, env: dict[str, str] | None
    ) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._watchdog = threading.Timer(lifetime, self.kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        # The child leads its own process group: this reaches its worker processes too
        # (kamailio forks), and nothing that this test did not start.
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def stop(self, grace: float = 2.0) -> int:
        """Wait ``grace`` seconds for a clean exit, then SIGTERM, then SIGKILL; the exit code."""
        self._watchdog.cancel()
        for signum in (None, signal.SIGTERM, signal.SIGKILL):
            if signum is not None:
                self.signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
                break
        with contextlib.suppress(OSError):
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        self._log_file.close()
        return self.popen.wait()

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise PeerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- baresip -------------------------------------------------------------------------------------


class Baresip:
    """A baresip 1.0 user agent in its own config dir, driven over ctrl_tcp (netstring JSON).

    ``answermode="auto"`` makes it a callee. ``audio_source`` is an 8 kHz mono WAV (when it ends,
    baresip hangs up, so the default is 60 s of a quiet tone). ``record_dir`` loads ``sndfile.so``,
    which writes ``dump-*-dec.wav`` (heard) and ``dump-*-enc.wav`` (sent) there. ``registrar``
    (``host:port``) with ``password`` registers the account there with digest auth.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "tester",
        answermode: str = "manual",
        audio_source: Path | None = None,
        record_dir: Path | None = None,
        registrar: str | None = None,
        password: str | None = None,
        lifetime: float = 30.0,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.sip_port = free_sip_port()
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        while self.ctrl_port == self.sip_port + 1:
            self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.rtp_base = free_port_block(20)
        self.audio_source = audio_source or write_wav(workdir / "source.wav", 60, tone_hz=440)
        self.record_dir = record_dir
        self._answermode = answermode
        self._registrar = registrar
        self._password = password
        self._lifetime = lifetime
        self._process: _Process | None = None
        self._sock: socket.socket | None = None
        self._events: list[dict[str, object]] = []
        self._responses: dict[str, dict[str, object]] = {}
        self._changed = threading.Condition()
        self._token = 0

    @property
    def uri(self) -> str:
        """Where to call this instance."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    @property
    def pid(self) -> int | None:
        """The baresip process id while it runs."""
        return self._process.pid if self._process else None

    def _write_config(self) -> None:
        modules = ["g711.so", "aufile.so", "aubridge.so"]
        lines = [
            "poll_method epoll",
            f"sip_listen {HOST}:{self.sip_port}",
            "sip_trans_def udp",
            f"net_interface {HOST}",
            f"audio_source aufile,{self.audio_source}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            "ausrc_srate 8000",
            "ausrc_channels 1",
            "auplay_srate 8000",
            "auplay_channels 1",
            f"rtp_ports {self.rtp_base}-{self.rtp_base + 19}",
            "module_path /usr/lib/baresip/modules",
        ]
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            modules.append("sndfile.so")
            lines.append(f"snd_path {self.record_dir}")
        lines += [f"module {module}" for module in modules]
        lines += [
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
        ]
        (self.workdir / "config").write_text("\n".join(lines) + "\n")
        domain = self._registrar or HOST
        params = [f"regint={60 if self._registrar else 0}", f"answermode={self._answermode}"]
        if self._password is not None:
            params.append(f"auth_pass={self._password}")
        params.append("audio_codecs=PCMU,PCMA")
        (self.workdir / "accounts").write_text(f"<sip:{self.user}@{domain}>;{';'.join(params)}\n")
        (self.workdir / "contacts").write_text("")

    def start(self, timeout: float = 5.0) -> Baresip:
        """Write the config, launch ``baresip -f DIR`` and connect to its ctrl_tcp port."""
        self._write_config()
        self._process = _Process(
            ["baresip", "-f", str(self.workdir)],
            cwd=self.workdir,
            log=self.workdir / "baresip.log",
            lifetime=self._lifetime,
            env=None,
        )
        deadline = time.monotonic() + timeout
        while self._sock is None:
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=0.5)
            except OSError as error:
                if time.monotonic() > deadline or not self._process.running():
                    raise PeerError(
                        f"baresip ctrl_tcp on port {self.ctrl_port} not reachable ({error}); "
                        f"log:\n{self._process.output()[-2000:]}"
                    ) from error
                time.sleep(0.05)
        self._sock.settimeout(None)
        threading.Thread(target=self._read_loop, args=(self._sock,), daemon=True).start()
        return self

    def _read_loop(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                return
            buffer += chunk
            while (colon := buffer.find(b":")) > 0 and buffer[:colon].isdigit():
                length = int(buffer[:colon])
                end = colon + 1 + length
                if len(buffer) < end + 1:
                    break
                message = json.loads(buffer[colon + 1 : end])
                buffer = buffer[end + 1 :]  # drop the trailing comma
                with self._changed:
                    if message.get("response"):
                        self._responses[str(message.get("token"))] = message
                    elif message.get("event"):
                        self._events.append(message)
                    self._changed.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, object]:
        """Run a ctrl_tcp command and return its response (``ok``, ``data``)."""
        if self._sock is None:
            raise PeerError("baresip is not started")
        self._token += 1
        token = str(self._token)
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        with self._changed:
            if not self._changed.wait_for(lambda: token in self._responses, timeout):
                raise PeerError(f"baresip did not answer {command!r} within {timeout} s")
            response = self._responses.pop(token)
        if not response.get("ok"):
            raise PeerError(f"baresip refused {command} {params}: {response.get('data')}")
        return response

    @property
    def events(self) -> list[dict[str, object]]:
        """All ctrl_tcp events so far (``type``, ``peeruri`` ...)."""
        with self._changed:
            return list(self._events)

    def wait_event(self, event_type: str, timeout: float = 10.0) -> dict[str, object]:
        """The first event of ``event_type`` not yet returned by an earlier wait."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(e.get("type") == event_type for e in self._events), timeout
            )
            if not found:
                seen = [e.get("type") for e in self._events]
                raise PeerError(f"no baresip event {event_type} within {timeout} s (seen {seen})")
            index = next(i for i, e in enumerate(self._events) if e.get("type") == event_type)
            return self._events.pop(index)

    def dial(self, uri: str) -> None:
        """Start a call to ``uri`` (wait for ``CALL_ESTABLISHED`` yourself)."""
        self.command("dial", uri)

    def send_digits(self, digits: str) -> None:
        """Send ``digits`` as RFC 4733 telephone events on the current call."""
        self.command("sndcode", digits)

    def received_keys(self) -> str:
        """The keys baresip received so far (RFC 4733 or SIP INFO), one per press, in order:
        its ``CALL_DTMF_START`` events (do not :meth:`wait_event` for those, it removes them)."""
        return "".join(str(e.get("param", "")) for e in self.events
                       if e.get("type") == "CALL_DTMF_START")

    def wait_keys(self, count: int, timeout: float = 10.0) -> str:
        """:meth:`received_keys` once there are at least ``count`` of them."""
        try:
            _wait_until(lambda: len(self.received_keys()) >= count, timeout,
                        f"{count} keys at baresip")
        except PeerError as error:
            raise PeerError(f"{error}; it received {self.received_keys()!r}") from None
        return self.received_keys()

    def hangup(self) -> None:
        """End the current call."""
        self.command("hangup")

    def quit(self) -> None:
        """Ask baresip to exit (it may not; :meth:`close` kills it by PID)."""
        with contextlib.suppress(PeerError, OSError):
            self.command("quit", timeout=1.0)

    def wait_registration(self, timeout: float = 10.0) -> str:
        """``"OK"`` once the registrar accepted the account, ``"ERR"`` once it refused it.

        Registration starts with baresip, before ctrl_tcp is connected, so its events may be
        gone already; ``reginfo`` shows the state instead.
        """
        state: list[str] = []

        def settled() -> bool:
            data = str(self.command("reginfo").get("data", ""))
            state[:] = re.findall(r"\b(OK|ERR)\b", re.sub(r"\x1b\[[0-9;]*m", "", data))
            return bool(state)

        _wait_until(settled, timeout, f"registration of {self.user} to settle")
        return state[0]

    def recordings(self, direction: str = "dec") -> list[Path]:
        """WAVs written by ``sndfile.so``: ``dec`` is what baresip heard, ``enc`` what it sent."""
        if self.record_dir is None:
            return []
        return sorted(self.record_dir.glob(f"dump-*-{direction}.wav"))

    def log(self) -> str:
        """Everything baresip printed."""
        return self._process.output() if self._process else ""

    def close(self) -> None:
        """Quit, then stop the process by PID, whatever state it is in."""
        if self._process is None:
            return
        if self._process.running():
            self.quit()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._process.stop(grace=1.0)


# -- linphonec -----------------------------------------------------------------------------------


class Linphonec:
    """A linphonec 5.1 instance with its own ``$HOME``, driven through its stdin.

    Known problem: on the current test machine linphonec opens no SIP listening point (its
    calls fail with "No listening point matching"), with this driver and with ``linphonecsh``
    alike, so no test uses this class yet.

    ``dtmf="info"`` sends digits as SIP INFO ``application/dtmf-relay``; ``"rfc4733"`` as
    telephone events.
    """

    def __init__(
        self, workdir: Path, *, user: str = "lptester", dtmf: str = "info", lifetime: float = 30.0
    ) -> None:
        if dtmf not in ("info", "rfc4733"):
            raise PeerError(f"linphonec dtmf must be 'info' or 'rfc4733', got {dtmf!r}")
        self.workdir = workdir
        (workdir / "home").mkdir(parents=True, exist_ok=True)
        self.user = user
        self.sip_port = free_port()
        self.rtp_port = free_port_block(4)
        self._dtmf = dtmf
        self._lifetime = lifetime
        self._process: _Process | None = None

    @property
    def uri(self) -> str:
        """This instance's own address."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    def _write_rc(self) -> Path:
        info = self._dtmf == "info"
        rc = self.workdir / "linphonerc"
        rc.write_text(
            "[sip]\n"
            f"sip_port={self.sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n"
            "use_ipv6=0\nipv6_migration_done=1\n"
            f"bind_address={HOST}\nguess_hostname=0\n"
            f"contact=sip:{self.user}@{HOST}:{self.sip_port}\n"
            f"use_info={int(info)}\nuse_rfc2833={int(not info)}\n"
            "[rtp]\n"
            f"bind_address={HOST}\naudio_rtp_port={self.rtp_port}\n"
        )
        return rc

    def start(self, timeout: float = 5.0) -> Linphonec:
        """Launch linphonec with a fresh rc file and switch it to file audio."""
        rc = self._write_rc()
        env = {**os.environ, "HOME": str(self.workdir / "home")}
        self._process = _Process(
            ["linphonec", "-c", str(rc)],
            cwd=self.workdir,
            log=self.workdir / "linphonec.log",
            lifetime=self._lifetime,
            env=env,
        )
        self._wait_output("linphonec>", timeout)
        self.send("soundcard use files")
        return self

    def send(self, line: str) -> None:
        """Type one command line."""
        if self._process is None or self._process.popen.stdin is None:
            raise PeerError("linphonec is not started")
        self._process.popen.stdin.write(line.encode() + b"\n")
        self._process.popen.stdin.flush()

    def _wait_output(self, pattern: str, timeout: float) -> None:
        process = self._process
        assert process is not None
        _wait_until(
            lambda: re.search(pattern, process.output()) is not None,
            timeout,
            f"linphonec output matching {pattern!r}; output:\n{process.output()[-1500:]}",
        )

    def call(self, uri: str, timeout: float = 10.0) -> None:
        """Call ``uri`` and wait until the call is connected."""
        process = self._process
        assert process is not None
        attempts: list[int] = []

        def connected() -> bool:
            output = process.output()
            if re.search(r"Call \d+ with .* connected", output):
                return True
            # Right after start-up the SIP listening point may not exist yet ("... error."):
            # dial again.
            failures = len(re.findall(r"Call \d+ with .* error", output))
            if len(attempts) <= failures and len(attempts) < 5:
                attempts.append(failures)
                time.sleep(0.3 * len(attempts))
                self.send(f"call {uri}")
            return False

        _wait_until(connected, timeout, f"linphonec call to {uri}; output:\n{self.log()[-1500:]}")

    def send_digits(self, digits: str) -> None:
        """Send ``digits`` during the call (INFO or RFC 4733, per ``dtmf``)."""
        self.send(digits)

    def terminate(self, timeout: float = 5.0) -> None:
        """Hang up and wait until linphonec reports the call ended."""
        self.send("terminate")
        self._wait_output(r"Call \d+ with .* ended", timeout)

    def log(self) -> str:
        """Everything linphonec printed."""
        return self._process.output() if self._process else ""

    def close(self) -> None:
        """Quit, then stop the process by PID."""
        if self._process is None:
            return
        with contextlib.suppress(PeerError, OSError):
            if self._process.running():
                self.send("quit")
        self._process.stop(grace=2.0)


# -- SIPp ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SippResult:
    """How a SIPp run ended: exit code (0 = all calls succeeded) and its summary counters."""

    exit_code: int
    successful: int
    failed: int
    output: str


def run_sipp(
    target: str | None,
    *,
    workdir: Path,
    scenario: Path | None = None,
    builtin: str = "uac",
    service: str = "bot",
    calls: int = 1,
    port: int | None = None,
    media_port: int | None = None,
    timeout: float = 15.0,
    extra: tuple[str, ...] = (),
) -> SippResult:
    """Run a SIPp client to completion: ``scenario`` XML, or a built-in (``-sn uac``)."""
    sipp = Sipp(workdir, scenario=scenario, builtin=builtin, port=port, media_port=media_port)
    return sipp.run(target, service=service, calls=calls, timeout=timeout, extra=extra)


class Sipp:
    """One SIPp instance: run a client to completion, or start a server (``-sn uas``)."""

    def __init__(
        self,
        workdir: Path,
        *,
        scenario: Path | None = None,
        builtin: str = "uac",
        port: int | None = None,
        media_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.media_port = media_port or free_port_block(4)
        self._scenario = ["-sf", str(scenario)] if scenario else ["-sn", builtin]
        self._process: _Process | None = None

    def _argv(self, target: str | None, extra: tuple[str, ...]) -> list[str]:
        argv = ["sipp", *([target] if target else []), *self._scenario]
        argv += ["-i", HOST, "-p", str(self.port), "-mi", HOST, "-mp", str(self.media_port)]
        argv += ["-nostdin", "-trace_err", "-trace_screen", *extra]
        return argv

    def run(
        self,
        target: str | None,
        *,
        service: str = "bot",
        calls: int = 1,
        timeout: float = 15.0,
        extra: tuple[str, ...] = (),
    ) -> SippResult:
        """Run to completion (``-m calls``) and return exit code and counters."""
        argv = self._argv(target, ("-s", service, "-m", str(calls), *extra))
        try:
            done = subprocess.run(
                argv, cwd=self.workdir, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as error:
            raise PeerError(f"sipp did not finish within {timeout} s: {argv}") from error
        screen = "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_screen.log"))
        output = done.stdout + done.stderr + screen
        return SippResult(
            done.returncode,
            _sipp_counter(screen, "Successful call"),
            _sipp_counter(screen, "Failed call"),
            output,
        )

    def serve(self, lifetime: float = 30.0, extra: tuple[str, ...] = ()) -> Sipp:
        """Start as a server in the background (e.g. ``builtin="uas"``); stop with close()."""
        self._process = _Process(
            self._argv(None, extra),
            cwd=self.workdir,
            log=self.workdir / "sipp-server.log",
            lifetime=lifetime,
            env=None,
        )
        time.sleep(0.2)
        if not self._process.running():
            raise PeerError(f"sipp server exited at once:\n{self._process.output()[-1500:]}")
        return self

    @property
    def uri(self) -> str:
        """Where a server instance listens."""
        return f"{HOST}:{self.port}"

    def close(self) -> None:
        """Stop a server instance by PID."""
        if self._process is not None:
            self._process.stop(grace=0.5)


def _sipp_counter(screen: str, label: str) -> int:
    """The cumulative column of a counter row in SIPp's final screen."""
    rows = re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(rows[-1]) if rows else 0


# -- kamailio ------------------------------------------------------------------------------------

_KAMAILIO_CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:{host}:{port}
alias="{host}:{port}"
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "kex.so"
loadmodule "rr.so"
loadmodule "siputils.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route() || lookup("location")) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        if ($au != "{user}") {{ sl_send_reply("403", "Forbidden"); exit; }}
        save("location");
        exit;
    }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


class Kamailio:
    """A kamailio registrar with digest auth for one subscriber (``user``/``password``)."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "engine",
        password: str = "secret",
        lifetime: float = 30.0,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = password
        self.port = free_port()
        self._lifetime = lifetime
        self._process: _Process | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the registrar."""
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 5.0) -> Kamailio:
        """Write the config and run kamailio in the foreground until close()."""
        config = self.workdir / "kamailio.cfg"
        config.write_text(
            _KAMAILIO_CONFIG.format(
                host=HOST, port=self.port, user=self.user, password=self.password
            )
        )
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(config)], capture_output=True, text=True, timeout=timeout
        )
        if check.returncode != 0:
            raise PeerError(f"kamailio rejected its config:\n{check.stderr[-2000:]}")
        self._process = _Process(
            [
                "kamailio",
                "-f",
                str(config),
                "-P",
                str(self.workdir / "pid"),
                "-w",
                str(self.workdir),
                "-E",
                "-D",
                "-Y",
                str(self.workdir),
            ],
            cwd=self.workdir,
            log=self.workdir / "kamailio.log",
            lifetime=self._lifetime,
            env=None,
        )
        process = self._process
        _wait_until(
            lambda: not _is_free(self.port, socket.SOCK_DGRAM) or not process.running(),
            timeout,
            "kamailio to listen",
        )
        if not process.running():
            raise PeerError(f"kamailio exited:\n{process.output()[-2000:]}")
        return self

    def log(self) -> str:
        """Everything kamailio printed."""
        return self._process.output() if self._process else ""

    def close(self) -> None:
        """Stop kamailio by PID."""
        if self._process is not None:
            self._process.stop(grace=2.0)


@contextlib.contextmanager
def running(peer: Baresip | Linphonec | Kamailio) -> Iterator[None]:
    """Start ``peer`` and always close it."""
    try:
        peer.start()
        yield
    finally:
        peer.close()
