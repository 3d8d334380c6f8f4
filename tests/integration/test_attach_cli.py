"""`cockpit --url URL --token-file F`: what is refused before a screen opens, each with a sentence saying what to
do (exit 2): a token file others may read, one with no token, the two options apart, a URL that is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.attached import Target, read_token
from cockpit.cli.parser import build_parser
from cockpit.cli.screen import run_tui
from cockpit.fleet import watched
from cockpit.link import LinkError
from engine.kernel.config import ConfigError, EngineConfig, Settings, load_settings


def settings(tmp_path) -> Settings:
    return Settings(engine=EngineConfig(data_dir=tmp_path / "data"))


def test_a_token_file_others_may_read_is_refused_with_what_to_do(tmp_path, capsys):
    token = tmp_path / "desk.token"
    token.write_text("ckpt_secret\n")
    token.chmod(0o644)
    assert run_tui(settings(tmp_path), False, ["http://127.0.0.1:9"], [token]) == 2
    err = capsys.readouterr().err
    assert "readable by others (mode 0644)" in err and f"chmod 600 {token}" in err
    assert "ckpt_secret" not in err  # never the token itself
    token.chmod(0o600)
    assert read_token(token) == "ckpt_secret"


@pytest.mark.parametrize("content", ["", "\n", "two words\n"])
def test_a_token_file_without_one_token_is_refused(tmp_path, content):
    token = tmp_path / "empty.token"
    token.write_text(content)
    token.chmod(0o600)
    with pytest.raises(LinkError, match="holds no token"):
        read_token(token)


def test_url_and_token_file_go_together_and_the_url_must_be_one(tmp_path, capsys):
    assert run_tui(settings(tmp_path), False, ["http://127.0.0.1:9"], None) == 2
    assert "--url and --token-file go together" in capsys.readouterr().err
    with pytest.raises(LinkError, match="http"):
        Target.remote("127.0.0.1:8443", "t")
    assert Target.remote("https://desk.example:8443/", "t").base_url == "https://desk.example:8443"
    args = build_parser().parse_args(["tui", "--url", "http://h:1", "--token-file", "f"])
    assert (args.url, [str(f) for f in args.token_file]) == (["http://h:1"], ["f"])
    args = build_parser().parse_args(["--url", "http://h:1", "--token-file", "f", "--url", "http://g:2"])
    assert (args.command, args.url) == (None, ["http://h:1", "http://g:2"])


def token_file(tmp_path, name: str) -> Path:
    path = tmp_path / f"{name}.token"
    path.write_text(f"ckpt_{name}\n")
    path.chmod(0o600)
    return path


def test_several_engines_one_token_for_all_or_one_each_and_each_named_once(tmp_path):
    one, two = token_file(tmp_path, "one"), token_file(tmp_path, "two")
    urls = ["https://desk-a:8443", "https://desk-b:8443"]
    engines = watched((), urls, [one], None)
    assert [(e.name, e.target.token) for e in engines] == [("desk-a:8443", "ckpt_one"), ("desk-b:8443", "ckpt_one")]
    assert [e.target.token for e in watched((), urls, [one, two], None)] == ["ckpt_one", "ckpt_two"]
    with pytest.raises(LinkError, match="one --token-file for all, or one per --url"):
        watched((), urls + ["https://desk-c:1"], [one, two], None)
    with pytest.raises(LinkError, match="named twice"):
        watched((), [urls[0], urls[0] + "/"], [one], None)


def test_remote_entries_beside_the_engine_of_this_data_directory(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        f"""
[[remote]]
name = "prod"
url = "https://10.0.0.5:8443"
token_file = "{token_file(tmp_path, "prod")}"

[[remote]]
data_dir = "{tmp_path / "lab"}"

[[remote]]
name = "prod"
data_dir = "{tmp_path / "other"}"
"""
    )
    remotes = load_settings(path).remote
    engines = watched(remotes, [], [], tmp_path / "data")
    assert [e.name for e in engines] == ["local", "prod", "lab", "prod#2"]
    assert engines[0].target.socket == (tmp_path / "data" / "cockpit.sock").resolve()
    assert watched(remotes, [], [], None)[0].name == "prod"  # no engine here: the remote ones only
    # --url given: exactly those, the [[remote]] entries aside
    assert [e.name for e in watched(remotes, ["http://h:1"], [token_file(tmp_path, "h")], None)] == ["h:1"]
    path.write_text('[[remote]]\nurl = "https://x:1"\n')
    with pytest.raises(ConfigError, match="url and token_file go together"):
        load_settings(path)
    path.write_text(f'[[remote]]\nurl = "https://x:1"\ntoken_file = "t"\ndata_dir = "{tmp_path}"\n')
    with pytest.raises(ConfigError, match="names one engine"):
        load_settings(path)
