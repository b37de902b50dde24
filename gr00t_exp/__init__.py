"""gr00t_exp: config-driven GR00T N1.5 fine-tuning, serving and Unitree G1 + Inspire deployment."""

__version__ = "0.1.0"
