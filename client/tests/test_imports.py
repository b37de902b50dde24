"""The client imports with numpy, pyzmq and msgpack only: no torch, no server-side dependency."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gr00t_exp_client


def test_client_imports_only_numpy_zmq_msgpack(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        for name in ("torch", "transformers", "fastapi", "uvicorn", "omegaconf", "hydra", "pyarrow",
                     "pydantic", "gr00t_exp"):
            sys.modules[name] = None  # any import of these now raises ImportError
        import gr00t_exp_client
        from gr00t_exp_client import HttpPolicyClient, PolicyClient, PolicyServerError, PolicyTimeoutError
        from gr00t_exp_client import json_codec, wire
        c = PolicyClient(port=1, timeout_ms=50, retries=0)
        assert c.ping() is False
        c.close()
        allowed = {"numpy", "zmq", "msgpack", "gr00t_exp_client", "cython_runtime"}
        loaded = {m.split(".")[0] for m, mod in sys.modules.items() if mod is not None}
        third_party = loaded - set(sys.stdlib_module_names)
        extra = {m for m in third_party if not m.startswith("_")} - allowed
        assert not extra, extra
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_version_matches_the_distribution():
    from importlib.metadata import version

    assert gr00t_exp_client.__version__ == version("gr00t_exp_client")
