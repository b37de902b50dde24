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

SERVER_CLASSES = {"zmq": ZmqPolicyServer, "http": HttpPolicyServer}
SERVER_FIELDS = [f.name for f in fields(ServerConfig) if f.name != "kind"]


def _other_value(name: str) -> object:
    """A value different from the field's default, of the field's type (no server is started)."""
    default = getattr(ServerConfig(), name)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, list):
        return ["example"]
    return f"set-{name}"  # str, or an Optional[str] left at None


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


@pytest.mark.parametrize("kind", sorted(SERVER_CLASSES))
@pytest.mark.parametrize("name", SERVER_FIELDS)
def test_every_server_field_reaches_the_server_or_is_refused(kind, name, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cls = SERVER_CLASSES[kind]
    params = inspect.signature(cls).parameters
    value = _other_value(name)
    sc = ServerConfig(kind=kind, **{name: value})
    if name in params:
        kw = server_kwargs(sc, cls)
        assert kw[name] == value
        assert set(kw) == set(SERVER_FIELDS) & set(params)
        inspect.signature(cls).bind(object(), **kw)  # every keyword exists
    else:  # set but not an option of this server: refused, never dropped
        with pytest.raises(
            ValueError, match=rf"deploy.server.{name}=.* is not an option of the {kind} server"
        ):
            server_kwargs(sc, cls)


def test_the_zmq_server_object_holds_the_configured_values(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    _, secret = zmq.auth.create_certificates(str(tmp_path), "server")
    sc = ServerConfig(
        host="localhost",
        port=6001,
        api_token="t" * 20,
        curve_secret_key_file=secret,
        curve_authorized_keys_dir=str(tmp_path),
        max_message_bytes=1234,
        max_queue=3,
    )
    srv = ZmqPolicyServer(ConstantPolicy(small_spec()), **server_kwargs(sc, ZmqPolicyServer))  # not started
    assert (srv.host, srv.port, srv.max_message_bytes, srv._jobs.maxsize) == ("localhost", 6001, 1234, 3)
    assert srv._curve_file == secret and srv._curve_dir == str(tmp_path) and srv._token.required


def test_build_server_resolves_the_token_from_the_environment(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-123")

    srv = build_server(compose_config(["mode=serve"]), ConstantPolicy(small_spec()))
    assert srv._token.required


def test_one_message_limit_everywhere():
    assert ServerConfig().max_message_bytes == MAX_MESSAGE_BYTES
    for cls in (ZmqPolicyServer, HttpPolicyServer):
        assert inspect.signature(cls).parameters["max_message_bytes"].default == MAX_MESSAGE_BYTES
