"""``voxflow serve`` settings: a TOML file, then ``VOXFLOW_*`` variables, then flags.

One naming rule everywhere: a setting called ``trunk_host`` is ``trunk_host = ...`` at the top of
the TOML file or ``host = ...`` in its ``[trunk]`` section, ``VOXFLOW_TRUNK_HOST`` in the
environment, and (for the common ones) ``--trunk-host`` on the command line. Later sources win.
Every problem becomes a :class:`~voxflow.errors.ConfigError` naming the setting and its source.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voxflow.errors import ConfigError, VoxflowError
from voxflow.lines.config import SipLineConfig, TrunkSettings

ENV_PREFIX = "VOXFLOW_"
MODEL_PROVIDERS = frozenset({"whisper", "vosk"})
"""The STT providers that read their model from ``stt_model_path``."""
DEFAULT_FALLBACK_TEXT = "Sorry, we are having technical difficulties. Please call again later."


def split_host_port(value: str, setting: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:5060``) → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"{setting} {value!r}: expected HOST:PORT, e.g. 0.0.0.0:5060")
    return host, int(port_text)


def split_port_range(value: str, setting: str) -> tuple[int, int]:
    """``A-B`` → (A, B)."""
    low, sep, high = value.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ConfigError(f"{setting} {value!r}: expected a port range A-B, e.g. 40000-40999")
    return int(low), int(high)


class ServeSettings(BaseModel):
    """Everything ``voxflow serve`` needs; exactly one of webhook, assistant, websocket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = None
    assistant: str | None = None
    websocket: str | None = None
    api_token: str | None = None
    signing_secret: str | None = None
    webhook_timeout: float = Field(default=5.0, gt=0)
    failure_threshold: int = Field(default=3, ge=1)
    fallback_text: str = DEFAULT_FALLBACK_TEXT

    account_id: str = ""
    number_plus: bool = True
    records: str | None = None

    sip_listen: str = "0.0.0.0:5060"
    sip_user: str = "voxflow"
    public_address: str | None = None
    rtp_ports: str = "40000-40999"
    transfer_domain: str | None = None

    trunk_registrar: str | None = None
    trunk_host: str | None = None
    trunk_port: int = 5060
    trunk_username: str | None = None
    trunk_password: str | None = None

    tts_provider: str = "espeak"
    tts_voice: str = "en-us"

    # The caller's speech → user_speak (VAD, end of turn, recognition); off: keys only.
    listen: bool = True
    stt_provider: str = "pocketsphinx"
    # The model directory of the offline whisper (faster-whisper/CTranslate2) or vosk provider;
    # required when stt_provider is one of them ([stt] model_path in the TOML file).
    stt_model_path: str | None = None
    # Hosted recognisers, usable by stt_provider or configure_transcription when set.
    deepgram_api_key: str | None = None
    azure_speech_key: str | None = None
    azure_speech_region: str | None = None
    end_of_turn_silence_ms: int = Field(default=700, ge=20, le=10_000)
    # Voice activity: "webrtc" (2.4 µs a frame; fooled by loud noise and music) or "silero"
    # (about 70 µs a frame; holds on noisy lines and music on hold; needs voxflow[silero]).
    vad: Literal["webrtc", "silero"] = "webrtc"

    # Off unless set: the admin API can start and end calls, so it is opened on purpose (on a
    # loopback address, or with admin_token, e.g. "127.0.0.1:8089").
    admin_listen: str | None = None
    admin_token: str | None = None

    # Outbound calls (POST /v3/ai-flows/{flow_id}/call): the flow id the API answers to, and our
    # number as the callee sees it (default: the trunk user, else sip_user).
    flow_id: str = "default"
    phone_number: str | None = None

    # Media-stream calls: a WebSocket endpoint carriers and SIP-to-WebSocket bridges stream
    # calls to (Media Streams protocol); off unless set, e.g. "0.0.0.0:8090".
    stream_listen: str | None = None
    stream_path: str = Field(default="/media-stream", pattern=r"^/")
    # Bridges must present it (X-API-TOKEN on the upgrade, or a "token" stream parameter).
    stream_token: str | None = None

    # On SIGTERM/SIGINT: new calls get 503 at once, live calls may finish for this many seconds,
    # then they are hung up (their session_end still delivered and recorded).
    shutdown_grace: float = Field(default=10.0, ge=0)
    # The engine only sees keys, not what they mean: when set, every key press is stored masked
    # ("***") in the call records (a PIN line), since nothing on the wire marks a digit secret.
    mask_digits_in_records: bool = False

    @model_validator(mode="after")
    def _one_assistant(self) -> ServeSettings:
        chosen = [name for name in ("webhook", "assistant", "websocket") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of webhook (URL), assistant (module:attribute) or websocket "
                f"(URL); got {', '.join(chosen) or 'none'}"
            )
        return self

    @model_validator(mode="after")
    def _stt_model(self) -> ServeSettings:
        provider = self.stt_provider.strip().lower()
        if provider in MODEL_PROVIDERS and not self.stt_model_path:
            raise ValueError(
                f"stt_provider {self.stt_provider!r} needs stt_model_path (the model directory)"
            )
        if provider in MODEL_PROVIDERS or self.stt_model_path:
            path = Path(self.stt_model_path or "").expanduser()
            if not path.is_dir():
                raise ValueError(f"stt_model_path {self.stt_model_path!r} is not a directory")
        return self

    @model_validator(mode="after")
    def _vad_available(self) -> ServeSettings:
        if self.listen and self.vad == "silero":
            # Loaded once here (the model is shared by all calls): a missing package is a
            # start-up error, not a call without listening.
            from voxflow.media.vad import make_vad

            try:
                make_vad("silero")
            except VoxflowError as exc:
                raise ValueError(f"vad 'silero' cannot be used: {exc}") from None
        return self

    @property
    def assistant_label(self) -> str:
        """What the engine talks to, for the ready line."""
        return self.webhook or self.websocket or f"in-process {self.assistant}"

    def line_config(self) -> SipLineConfig:
        """The SIP line's settings (ConfigError names a bad value)."""
        host, port = split_host_port(self.sip_listen, "sip_listen")
        low, high = split_port_range(self.rtp_ports, "rtp_ports")
        return SipLineConfig(
            listen_host=host,
            listen_port=port,
            public_address=self.public_address,
            rtp_port_min=low,
            rtp_port_max=high,
            user=self.sip_user,
            trunk=self._trunk(),
        )

    def admin_address(self) -> tuple[str, int] | None:
        """Where the admin API and dashboard listen, or None when they are off."""
        if not self.admin_listen:
            return None
        return split_host_port(self.admin_listen, "admin_listen")

    def stream_address(self) -> tuple[str, int] | None:
        """Where the media-stream WebSocket listens, or None when it is off."""
        if not self.stream_listen:
            return None
        return split_host_port(self.stream_listen, "stream_listen")

    def _trunk(self) -> TrunkSettings | None:
        if not (self.trunk_host or self.trunk_registrar):
            return None
        if not self.trunk_username or self.trunk_password is None:
            raise ConfigError("trunk: trunk_username and trunk_password are required")
        return TrunkSettings(
            registrar=self.trunk_registrar or self.trunk_host or "",
            host=self.trunk_host or self.trunk_registrar or "",
            port=self.trunk_port,
            username=self.trunk_username,
            password=self.trunk_password,
        )


def _flatten(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                if isinstance(inner_value, Mapping):
                    raise ConfigError(f"{source}: [{key}.{inner}] is nested too deeply")
                flat[f"{key}_{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def read_toml(path: Path) -> dict[str, Any]:
    """A settings file as flat ``section_key`` settings."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
    return _flatten(table, f"config file {path}")


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``VOXFLOW_*`` variables that name a setting (others, e.g. test switches, ignored)."""
    known = ServeSettings.model_fields
    found: dict[str, Any] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and (key := name[len(ENV_PREFIX):].lower()) in known:
            found[key] = value
    return found


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServeSettings:
    """Merge file < environment < flags (None flags are unset) and validate."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers = [
        (read_toml(config_file) if config_file else {}, f"config file {config_file}"),
        (read_env(os.environ if environ is None else environ), "environment"),
        ({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"),
    ]
    for values, source in layers:
        merged.update(values)
        sources.update(dict.fromkeys(values, source))
    if merged.get("webhook") or merged.get("assistant") or merged.get("websocket"):
        # A flag or variable naming the assistant replaces the file's choice of transport.
        strongest = max(
            (k for k in ("webhook", "assistant", "websocket") if merged.get(k)),
            key=lambda k: [s for _, s in layers].index(sources[k]),
        )
        for other in ("webhook", "assistant", "websocket"):
            if other != strongest and sources.get(other) != sources[strongest]:
                merged.pop(other, None)
    try:
        settings = ServeSettings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            where = sources.get(name.split(".")[0], "")
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting"
            problems.append(f"{name}{f' ({where})' if where else ''}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    settings.line_config()  # address and port problems surface now, not at the first call
    settings.admin_address()
    settings.stream_address()
    return settings
