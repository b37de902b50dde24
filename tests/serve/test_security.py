"""Bind rules and constant-time tokens."""

from __future__ import annotations

import pytest

from gr00t_exp.serve.security import InsecureBindError, TokenChecker, check_bind, is_loopback, resolve_token

TOKEN = "x" * 24


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_need_no_token(host):
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "*", "::", "", "192.168.1.10", "robot.local"])
def test_other_hosts_need_a_token_or_an_explicit_opt_out(host):
    assert not is_loopback(host)
    with pytest.raises(InsecureBindError, match="api_token"):
        check_bind(host, None)
    check_bind(host, TOKEN)
    check_bind(host, None, allow_insecure_remote=True)
    check_bind(host, None, curve_authenticated=True)


def test_short_tokens_are_refused_for_remote_binds():
    with pytest.raises(InsecureBindError, match="at least"):
        check_bind("0.0.0.0", "short")


def test_token_checker():
    t = TokenChecker(TOKEN)
    assert t.required and t.check(TOKEN) and t.check(TOKEN.encode())
    assert not t.check("y" * 24) and not t.check(None) and not t.check(123) and not t.check("")
    assert TokenChecker(None).check(None) and not TokenChecker(None).required


def test_token_from_environment(monkeypatch):
    monkeypatch.setenv("GR00T_EXP_API_TOKEN", TOKEN)
    assert resolve_token(None) == TOKEN
    assert resolve_token("explicit-token-123456") == "explicit-token-123456"
    monkeypatch.delenv("GR00T_EXP_API_TOKEN")
    assert resolve_token("") is None
