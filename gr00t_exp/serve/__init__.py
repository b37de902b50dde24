"""Policy serving: policies (Gr00tPolicy, ReplayPolicy), ZeroMQ/HTTP servers, the robot-side client.

Kept import-free: `gr00t_exp_client` must load with numpy, pyzmq and msgpack only.
See docs/serving.md.
"""
