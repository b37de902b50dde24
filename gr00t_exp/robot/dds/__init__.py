"""DDS transport to the G1: own IDL types wire-compatible with unitree_sdk2py, the LowCmd CRC, channels."""
