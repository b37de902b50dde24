"""Every `deploy.server` / client field of `deploy.policy` reaches the object built from it."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
import zmq.auth
from gr00t_exp_client import PolicyClient
from gr00t_exp_client.protocol import MAX_MESSAGE_BYTES, TOKEN_ENV

from gr00t_exp.config.compose import compose_config
from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.client import client_kwargs, policy_client
from gr00t_exp.serve.config import ClientConfig, ServerConfig
from gr00t_exp.serve.http_server import HttpPolicyServer
from gr00t_exp.serve.run import build_server, server_kwargs
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import small_spec

SERVER_FIELDS = [f.name for f in fields(ServerConfig) if f.name != "kind"]
# A value other than the default for every ServerConfig field (loopback, so no token rule applies).
NON_DEFAULT = {
    "host": "localhost",
    "port": 6001,
    "api_token": "t" * 20,
    "allow_insecure_remote": True,
    "curve_secret_key_file": None,  # set per test: needs a real key file
    "curve_authorized_keys_dir": None,
    "max_message_bytes": 1234,
    "enable_kill": True,
    "max_queue": 3,
}


def test_every_client_field_is_a_policy_client_keyword():
    params = set(inspect.signature(PolicyClient).parameters)
    assert {f.name for f in fields(ClientConfig)} <= params


def test_policy_client_gets_every_configured_field(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    server_public, _ = zmq.auth.create_certificates(str(tmp_path), "server")
    _, client_secret = zmq.auth.create_certificates(str(tmp_path), "robot")
    cfg = compose_config(
        [
            "deploy.policy.host=10.0.0.9",
            "deploy.policy.port=6002",
            "deploy.policy.timeout_ms=123",
            "deploy.policy.retries=7",
            "deploy.policy.api_token=abcdefghijklmnopqrst",
            f"deploy.policy.curve_server_key_file={server_public}",
            f"deploy.policy.curve_client_key_file={client_secret}",
        ]
    )
    kw = client_kwargs(cfg.deploy.policy)
    assert set(kw) == {f.name for f in fields(ClientConfig)}
    with policy_client(cfg.deploy.policy) as c:  # connecting does not need a server
        assert (c.host, c.port, c.timeout_ms, c.retries) == ("10.0.0.9", 6002, 123, 7)
        assert c.api_token == "abcdefghijklmnopqrst"
        assert c._curve is not None and c._curve[0] == zmq.auth.load_certificate(server_public)[0]
        assert c._curve[1] == zmq.auth.load_certificate(client_secret)[0]


def test_policy_client_token_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-123")
    assert client_kwargs(compose_config().deploy.policy)["api_token"] == "from-the-environment-123"
    explicit = compose_config(["deploy.policy.api_token=explicit-token-456789"]).deploy.policy
    assert client_kwargs(explicit)["api_token"] == "explicit-token-456789"


def test_zmq_server_takes_every_server_field(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    _, secret = zmq.auth.create_certificates(str(tmp_path), "server")
    values = {**NON_DEFAULT, "curve_secret_key_file": secret, "curve_authorized_keys_dir": str(tmp_path)}
    sc = ServerConfig(kind="zmq", **values)
    kw = server_kwargs(sc, ZmqPolicyServer)
    assert kw == values
    inspect.signature(ZmqPolicyServer).bind(object(), **kw)  # every keyword exists

    srv = ZmqPolicyServer(ConstantPolicy(small_spec()), **kw)  # not started: nothing bound
    assert (srv.host, srv.port, srv.max_message_bytes, srv._jobs.maxsize) == ("localhost", 6001, 1234, 3)
    assert srv._curve_file == secret and srv._curve_dir == str(tmp_path) and srv._token.required


@pytest.mark.parametrize(
    "name", [n for n in SERVER_FIELDS if n not in inspect.signature(HttpPolicyServer).parameters]
)
def test_http_server_refuses_a_zmq_only_field_instead_of_dropping_it(name, tmp_path):
    value = NON_DEFAULT[name] if NON_DEFAULT[name] is not None else str(tmp_path)
    sc = ServerConfig(kind="http", **{name: value})
    with pytest.raises(ValueError, match=rf"deploy.server.{name}=.* is not an option of the http server"):
        server_kwargs(sc, HttpPolicyServer)


def test_http_server_takes_its_fields(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    params = inspect.signature(HttpPolicyServer).parameters
    values = {k: v for k, v in NON_DEFAULT.items() if k in params}
    kw = server_kwargs(ServerConfig(kind="http", **values), HttpPolicyServer)
    assert kw == values


def test_build_server_resolves_the_token_from_the_environment(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-123")

    srv = build_server(compose_config(["mode=serve"]), ConstantPolicy(small_spec()))
    assert srv._token.required


def test_one_message_limit_everywhere():
    assert ServerConfig().max_message_bytes == MAX_MESSAGE_BYTES
    for cls in (ZmqPolicyServer, HttpPolicyServer):
        assert inspect.signature(cls).parameters["max_message_bytes"].default == MAX_MESSAGE_BYTES
