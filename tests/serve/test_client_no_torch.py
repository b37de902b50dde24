"""The robot-side client imports without torch (or any other heavy dependency)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_client_imports_without_torch(repo_root):
    code = textwrap.dedent(
        """
        import sys
        for name in ("torch", "transformers", "fastapi", "uvicorn", "omegaconf", "hydra", "pyarrow", "pydantic"):
            sys.modules[name] = None  # any import of these now raises ImportError
        from gr00t_exp_client import PolicyClient, PolicyServerError, PolicyTimeoutError
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
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
