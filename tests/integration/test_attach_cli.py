"""`cockpit --url URL --token-file F`: what is refused before a screen opens, each with a sentence saying what to
do (exit 2): a token file others may read, one with no token, the two options apart, a URL that is not one."""

from __future__ import annotations

import pytest

from cockpit.attached import Target, read_token
from cockpit.cli import _run_tui, build_parser
from cockpit.link import LinkError
from engine.kernel.config import EngineConfig, Settings


def settings(tmp_path) -> Settings:
    return Settings(engine=EngineConfig(data_dir=tmp_path / "data"))


def test_a_token_file_others_may_read_is_refused_with_what_to_do(tmp_path, capsys):
    token = tmp_path / "desk.token"
    token.write_text("ckpt_secret\n")
    token.chmod(0o644)
    assert _run_tui(settings(tmp_path), False, "http://127.0.0.1:9", token) == 2
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
    assert _run_tui(settings(tmp_path), False, "http://127.0.0.1:9", None) == 2
    assert "--url and --token-file go together" in capsys.readouterr().err
    with pytest.raises(LinkError, match="http"):
        Target.remote("127.0.0.1:8443", "t")
    assert Target.remote("https://desk.example:8443/", "t").base_url == "https://desk.example:8443"
    args = build_parser().parse_args(["tui", "--url", "http://h:1", "--token-file", "f"])
    assert (args.url, str(args.token_file)) == ("http://h:1", "f")
    args = build_parser().parse_args(["--url", "http://h:1", "--token-file", "f"])
    assert (args.command, args.url) == (None, "http://h:1")
