"""Camera presets against fake servers speaking each Unitree image-server framing: the legacy stitched
JPEG (deploy=g1_inspire) and teleimager's one stream per camera (deploy=g1_inspire_teleimager)."""

import functools

import numpy as np
import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.robot.cameras import CameraClient
from gr00t_exp.robot.config import robot_config
from gr00t_exp.robot.fakes.cameras import CAMERA_RGB, FakeImageServer

from .rig import free_port


@functools.cache
def _composed(preset: str, mode: str = "robot"):
    return compose_config([f"mode={mode}", f"deploy={preset}", "deploy.policy.host=h"])


@pytest.mark.parametrize(
    "preset, framing, header, ports",
    [
        ("g1_inspire", "legacy", False, [5555]),
        ("g1_inspire", "legacy", True, [5555]),  # the legacy server's Unit_Test mode: 12-byte header
        ("g1_inspire_teleimager", "teleimager", False, [55555, 55556, 55557]),
    ],
    ids=["legacy", "legacy_unit_test_header", "teleimager"],
)
def test_camera_preset_decodes_every_view_from_its_server(preset, framing, header, ports):
    rc = robot_config(_composed(preset))  # a fresh typed copy each time
    cams = rc.cameras
    assert [st.port for st in cams.streams] == ports and cams.host == "192.168.123.164"  # PC2
    # the same preset, pointed at the fake on loopback (free ports: tests run in parallel)
    cams.host = "127.0.0.1"
    local = [free_port() for _ in cams.streams]
    for st, port in zip(cams.streams, local, strict=True):
        st.port, st.header = port, header
    with FakeImageServer(framing, local, header=header):
        client = CameraClient(cams).start()
        try:
            frames = client.wait_ready(list(CAMERA_RGB), 10.0)
        finally:
            client.close()
    assert client.errors == 0
    for name, rgb in CAMERA_RGB.items():
        img = frames[name].image
        assert img.shape == (480, 640, 3), (name, img.shape)
        # the right view under the right name, in RGB
        assert np.abs(img.reshape(-1, 3).mean(axis=0) - rgb).max() < 12, (name, img.reshape(-1, 3).mean(0))


def test_teleimager_preset_serves_one_port_per_camera():
    rc = robot_config(_composed("g1_inspire_teleimager", "camera_server"))
    assert rc.camera_server.layout == "per_port" and rc.camera_server.bind.endswith(":55555")
    assert [s.name for s in rc.camera_server.sources] == ["head", "left_wrist", "right_wrist"]
    assert (rc.camera_server.sources[0].width, rc.camera_server.sources[0].height) == (1280, 480)
