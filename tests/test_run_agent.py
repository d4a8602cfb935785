"""The CLI: options from flags, MAVID_* variables and a TOML file, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import run_agent

ROOT = Path(__file__).resolve().parents[1]


def parse(args: list[str], config: Path | None = None) -> run_agent.ServeCommand:
    token = run_agent._CONFIG_FILE.set(config)
    try:
        return run_agent.ServeCommand(_cli_parse_args=args)
    finally:
        run_agent._CONFIG_FILE.reset(token)


def test_flags_env_and_toml_in_order_of_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "mavid.toml"
    cfg.write_text('[serve]\nport = 9001\nmax_sessions = 7\nhost = "10.1.2.3"\n')
    monkeypatch.setenv("MAVID_MAX_SESSIONS", "5")
    s = parse(["--host", "127.0.0.2"], config=cfg)
    assert s.host == "127.0.0.2"  # flag beats env and file
    assert s.max_sessions == 5  # env beats file
    assert s.port == 9001  # file beats default
    assert s.threads == 2  # default


def test_list_option_from_flags_and_env(monkeypatch):
    s = parse(["--ice-host-addresses", "127.0.0.1", "--ice-host-addresses", "::1"])
    assert s.ice_host_addresses == ["127.0.0.1", "::1"]
    monkeypatch.setenv("MAVID_ICE_HOST_ADDRESSES", '["127.0.0.1"]')
    assert parse([]).ice_host_addresses == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("argv", "env", "toml", "needle"),
    [
        (["serve", "--port", "abc"], {}, None, "setting 'port'"),
        (["serve"], {"MAVID_MAX_SESSIONS": "zero"}, None, "MAVID_MAX_SESSIONS"),
        (["serve"], {}, '[serve]\nport = "x"\n', "setting 'port'"),
        (["serve"], {}, "[serve]\nbogus_key = 1\n", "setting 'bogus_key'"),
        (["serve"], {}, "[nonsense]\na = 1\n", "unknown key 'nonsense'"),
        (["serve"], {}, "port = 1\n", "unknown key 'port'"),
        (["serve"], {}, "[serve\n", "not valid TOML"),
        (["serve", "--port", "70000"], {}, None, "setting 'port'"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, monkeypatch, capsys, argv, env, toml, needle):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if toml is not None:
        path = tmp_path / "bad.toml"
        path.write_text(toml)
        argv = [*argv, "--config", str(path)]
    assert run_agent.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_missing_config_file(capsys):
    assert run_agent.main(["serve", "--config", "/nonexistent/mavid.toml"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(run_agent.COMMANDS))
def test_help_explains_every_option(command):
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_agent.py"), command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    fields = run_agent.COMMANDS[command].model_fields
    for name, field in fields.items():
        assert "--" + name.replace("_", "-") in out
        assert field.description, f"{command} --{name} has no help text"


def test_livekit_subcommand_hands_over_to_livekit_agents():
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_agent.py"), "livekit", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for mode in ("start", "dev", "connect"):
        assert mode in out


def test_livekit_reports_a_bad_agent_setting(monkeypatch, capsys):
    monkeypatch.setenv("MAVID_MAX_SESSIONS", "many")
    assert run_agent.main(["livekit", "start"]) == 2
    assert "MAVID_MAX_SESSIONS" in capsys.readouterr().err


def test_a_failing_command_says_why_in_one_line(tmp_path):
    bad = tmp_path / "face.png"
    bad.write_text("not an image")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_agent.py"), "serve", "--ref-image", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "error: cannot read reference image" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_eval_without_a_world_says_how_to_build_one(tmp_path, capsys):
    assert run_agent.main(["eval", "--world", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "holds no built world" in err and "run_agent.py data" in err
    assert "Traceback" not in err


def test_export_of_missing_runs_fails_in_one_line(tmp_path, capsys):
    code = run_agent.main(
        ["export", "--creator", str(tmp_path / "a"), "--conductor", str(tmp_path / "b"),
         "--dest", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "error:" in err and "config.json" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
