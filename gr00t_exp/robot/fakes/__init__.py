"""Fakes that speak the robot's real protocols (DDS on loopback, ZMQ JPEG in both Unitree image-server
framings) for tests and benches."""

from gr00t_exp.robot.fakes.cameras import FakeImageServer
from gr00t_exp.robot.fakes.g1 import FakeG1
from gr00t_exp.robot.fakes.hands import FakeDfxHands, FakeFtpHands

__all__ = ["FakeG1", "FakeDfxHands", "FakeFtpHands", "FakeImageServer"]
