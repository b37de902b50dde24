"""The robot-side clients, re-exported from the torch-free `gr00t_exp_client` distribution (client/)."""

from gr00t_exp_client import HttpPolicyClient, PolicyClient, PolicyServerError, PolicyTimeoutError

__all__ = ["HttpPolicyClient", "PolicyClient", "PolicyServerError", "PolicyTimeoutError"]
