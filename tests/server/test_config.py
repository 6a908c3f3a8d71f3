"""``voxflow serve`` settings: file < environment < flags, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.errors import ConfigError
from voxflow.server.config import load_settings


def test_file_environment_and_flags_merge_in_that_order(tmp_path: Path) -> None:
    config = tmp_path / "voxflow.toml"
    config.write_text(
        'account_id = "from-file"\nwebhook = "http://127.0.0.1:8000/"\n'
        '[sip]\nlisten = "127.0.0.1:5070"\n[trunk]\nhost = "127.0.0.1"\nusername = "u"\n'
        'password = "p"\n[tts]\nvoice = "en-gb"\n'
    )
    env = {"VOXFLOW_ACCOUNT_ID": "from-env", "VOXFLOW_RTP_PORTS": "30000-30099",
           "VOXFLOW_UNRELATED": "ignored"}
    settings = load_settings(config, environ=env, overrides={"rtp_ports": "31000-31009",
                                                             "webhook_timeout": None})
    assert settings.account_id == "from-env"
    assert settings.rtp_ports == "31000-31009"
    assert settings.tts_voice == "en-gb" and settings.webhook_timeout == 5.0
    line = settings.line_config()
    assert (line.listen_host, line.listen_port) == ("127.0.0.1", 5070)
    assert (line.rtp_port_min, line.rtp_port_max) == (31000, 31009)
    assert line.trunk is not None and line.trunk.username == "u"


def test_a_flag_naming_the_assistant_replaces_the_files_choice(tmp_path: Path) -> None:
    config = tmp_path / "voxflow.toml"
    config.write_text('webhook = "http://127.0.0.1:8000/"\nsip_listen = "127.0.0.1:5070"\n')
    settings = load_settings(config, environ={}, overrides={"assistant": "mod:attr"})
    assert settings.assistant == "mod:attr" and settings.webhook is None
    assert settings.assistant_label == "in-process mod:attr"


@pytest.mark.parametrize(("overrides", "message"), [
    ({}, "set exactly one of webhook"),
    ({"webhook": "http://a/", "assistant": "m:a"}, "got webhook, assistant"),
    ({"webhook": "http://a/", "sip_listen": "nowhere"}, "sip_listen 'nowhere'"),
    ({"webhook": "http://a/", "rtp_ports": "9-x"}, "rtp_ports '9-x'"),
    ({"webhook": "http://a/", "webhook_timeout": -1}, "webhook_timeout (command line)"),
    ({"webhook": "http://a/", "public_address": "example.org"}, "public_address"),
])
def test_bad_settings_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(None, environ={}, overrides=overrides)


def test_bad_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("webhook = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_settings(config, environ={})
    config.write_text('webhook = "http://a/"\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match=r"colour \(config file .*\): unknown setting"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="cannot read it"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_listening_and_transport_settings_reach_every_call(tmp_path: Path) -> None:
    from voxflow.server.app import VoxflowApp

    quiet = VoxflowApp(load_settings(None, environ={}, overrides={
        "webhook": "http://127.0.0.1:9/", "sip_listen": "127.0.0.1:5999", "listen": False,
        "end_of_turn_silence_ms": 400, "records": str(tmp_path / "a.sqlite3")}))
    assert not quiet.listening.enabled and quiet.listening.end_of_turn_silence_ms == 400
    assert not quiet.session_config.emit_speech_started  # HTTP webhooks never get it
    chatty = VoxflowApp(load_settings(None, environ={}, overrides={
        "websocket": "ws://127.0.0.1:9/", "sip_listen": "127.0.0.1:5999",
        "records": str(tmp_path / "b.sqlite3")}))
    assert chatty.listening.enabled and chatty.session_config.emit_speech_started


def test_outbound_identity_comes_from_the_environment() -> None:
    settings = load_settings(None, environ={"VOXFLOW_FLOW_ID": "sales-bot",
                                            "VOXFLOW_PHONE_NUMBER": "+4921100"},
                             overrides={"webhook": "http://127.0.0.1:9/",
                                        "sip_listen": "127.0.0.1:5999"})
    assert (settings.flow_id, settings.phone_number) == ("sales-bot", "+4921100")


def test_offline_stt_provider_needs_a_model_directory(tmp_path: Path) -> None:
    base = {"webhook": "http://127.0.0.1:9/", "sip_listen": "127.0.0.1:5999"}
    with pytest.raises(ConfigError, match="'whisper' needs stt_model_path"):
        load_settings(None, environ={}, overrides={**base, "stt_provider": "whisper"})
    with pytest.raises(ConfigError, match=r"stt_model_path '.*nowhere' is not a directory"):
        load_settings(None, environ={"VOXFLOW_STT_MODEL_PATH": str(tmp_path / "nowhere")},
                      overrides={**base, "stt_provider": "vosk"})
    settings = load_settings(None, environ={"VOXFLOW_STT_MODEL_PATH": str(tmp_path),
                                            "VOXFLOW_DEEPGRAM_API_KEY": "k"},
                             overrides={**base, "stt_provider": "vosk"})
    assert settings.stt_model_path == str(tmp_path) and settings.deepgram_api_key == "k"


def test_hosted_stt_keys_configure_those_providers() -> None:
    from voxflow.server.listener import ListenSettings

    settings = load_settings(None, environ={}, overrides={
        "webhook": "http://127.0.0.1:9/", "sip_listen": "127.0.0.1:5999",
        "azure_speech_key": "k", "azure_speech_region": "westeurope"})
    stt = ListenSettings.from_serve(settings).stt_settings()
    assert stt.default_provider == "pocketsphinx"
    assert stt.azure.subscription_key == "k" and stt.azure.region == "westeurope"
    assert stt.deepgram is None and stt.whisper is None and stt.vosk is None


def test_vad_is_chosen_by_name() -> None:
    from voxflow.server.listener import ListenSettings

    base = {"webhook": "http://127.0.0.1:9/", "sip_listen": "127.0.0.1:5999"}
    settings = load_settings(None, environ={"VOXFLOW_VAD": "silero"}, overrides=base)
    assert ListenSettings.from_serve(settings).vad == "silero"
    assert load_settings(None, environ={}, overrides=base).vad == "webrtc"
    with pytest.raises(ConfigError, match="vad"):
        load_settings(None, environ={}, overrides={**base, "vad": "energy"})
