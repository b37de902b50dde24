import time

import numpy as np
import pytest

from gr00t_exp.robot.dds import crc
from gr00t_exp.robot.dds.channel import DdsContext, DdsError
from gr00t_exp.robot.dds.msgs_go import MotorCmd_, MotorCmds_
from gr00t_exp.robot.dds.msgs_hg import LowCmd_, LowState_, MotorState_
from gr00t_exp.robot.dds.msgs_inspire import inspire_hand_ctrl, inspire_hand_state


def test_dds_type_names_match_unitree_sdk2py():
    assert LowCmd_.__idl__.idl_transformed_typename == "unitree_hg::msg::dds_::LowCmd_"
    assert LowState_.__idl__.idl_transformed_typename == "unitree_hg::msg::dds_::LowState_"
    assert MotorState_.__idl__.idl_transformed_typename == "unitree_hg::msg::dds_::MotorState_"
    assert MotorCmds_.__idl__.idl_transformed_typename == "unitree_go::msg::dds_::MotorCmds_"
    assert inspire_hand_ctrl.__idl__.idl_transformed_typename == "inspire::inspire_hand_ctrl"
    assert list(LowCmd_.__annotations__) == ["mode_pr", "mode_machine", "motor_cmd", "reserve", "crc"]
    assert list(LowState_.__annotations__) == [
        "version", "mode_pr", "mode_machine", "tick", "imu_state", "motor_state",
        "wireless_remote", "reserve", "crc",
    ]  # fmt: skip
    assert len(LowCmd_().motor_cmd) == 35 and len(LowState_().motor_state) == 35


def test_cdr_sizes_follow_the_idl():
    # XCDR1 final struct: 4-byte encapsulation header + body; each hg MotorCmd_ is 28 bytes in CDR too.
    one = MotorCmd_().serialize()
    assert len(one) - 4 == 1 + 3 + 5 * 4 + 12  # go MotorCmd_: u8, pad, 5 f32, u32[3]
    cmd = LowCmd_().serialize()
    # CDR aligns members, not structs: 2 u8 then MotorCmd_ at offset 2 (C layout: offset 4), so the
    # CRC must use the packed C layout (1004 bytes), not the CDR bytes.
    assert len(cmd) - 4 == 2 + 35 * 28 + 16 + 4 - 2
    assert LowCmd_.deserialize(cmd) == LowCmd_()


def test_crc_catalogue_check_value():
    # CRC-32/MPEG-2 check value from the CRC catalogue: the algorithm behind Unitree's CRC.
    assert crc.crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_lowcmd_crc_matches_the_documented_bitwise_algorithm():
    rng = np.random.default_rng(0)
    for _trial in range(3):
        m = LowCmd_()
        m.mode_machine = 5
        for i in rng.choice(35, size=10, replace=False):
            m.motor_cmd[i].mode = 1
            m.motor_cmd[i].q = float(rng.normal())
            m.motor_cmd[i].kp = 60.0
            m.motor_cmd[i].kd = 1.5
        words = np.frombuffer(crc.pack_lowcmd(m).tobytes(), dtype="<u4")[:-1]
        assert len(words) == 250
        assert crc.lowcmd_crc(m) == crc.crc32_words_reference(words)
    # any field change changes the CRC; the crc field itself does not take part
    a = crc.lowcmd_crc(m)
    m.crc = 123
    assert crc.lowcmd_crc(m) == a
    m.motor_cmd[34].reserve = 1
    assert crc.lowcmd_crc(m) != a


def test_lowstate_crc_packs_2092_bytes():
    s = LowState_()
    s.mode_machine = 5
    s.motor_state[20].q = 0.25
    rec = crc.pack_lowstate(s)
    assert rec.nbytes == 2092
    words = np.frombuffer(rec.tobytes(), dtype="<u4")[:-1]
    assert crc.lowstate_crc(s) == crc.crc32_words_reference(words)
    # field offsets of the C layout: motor_state[20].q
    assert np.frombuffer(rec.tobytes(), "<f4", count=1, offset=72 + 20 * 56 + 4)[0] == 0.25


def test_loopback_pubsub_of_all_message_types(domain_id):
    a = DdsContext(domain_id, "lo")
    b = DdsContext(domain_id, "lo")
    pairs = [
        ("rt/lowcmd", LowCmd_, lambda m: setattr(m, "mode_machine", 5)),
        ("rt/inspire/cmd", MotorCmds_, lambda m: m.cmds.extend(MotorCmd_(q=0.5) for _ in range(12))),
        ("rt/inspire_hand/ctrl/l", inspire_hand_ctrl, lambda m: setattr(m, "angle_set", [1000, 900, 800, 700, 600, 500])),
        ("rt/inspire_hand/state/r", inspire_hand_state, lambda m: setattr(m, "angle_act", [1, 2, 3, 4, 5, 6])),
    ]  # fmt: skip
    for topic, typ, fill in pairs:
        pub, sub = a.publisher(topic, typ), b.subscriber(topic, typ)
        msg = typ()
        fill(msg)
        if isinstance(msg, LowCmd_):
            crc.seal_lowcmd(msg)
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            assert pub.write(msg)
            got = sub.wait(0.05)
        assert got == msg, topic
        if isinstance(got, LowCmd_):
            assert crc.lowcmd_crc(got) == got.crc != 0


def test_domain_reopen_on_other_interface_is_refused(domain_id):
    DdsContext(domain_id, "lo")
    with pytest.raises(DdsError, match="interface"):
        DdsContext(domain_id, "eth9")


def test_crc_matches_unitree_known_values():
    # values computed with Unitree's own CRC library
    cmd = LowCmd_()
    assert crc.lowcmd_crc(cmd) == 4262932383  # all zero
    cmd.mode_machine = 5
    assert crc.lowcmd_crc(cmd) == 1425025005
    state = LowState_()
    state.imu_state.quaternion = [0.0] * 4  # our default is the identity quaternion: zero it
    assert crc.lowstate_crc(state) == 3595284554


def test_lowstate_crc_of_samples_received_over_dds(domain_id):
    """cyclonedds delivers uint8 arrays (wireless_remote) as bytes: the CRC must still verify."""
    a, b = DdsContext(domain_id, "lo"), DdsContext(domain_id, "lo")
    pub, sub = a.publisher("rt/lowstate", LowState_), b.subscriber("rt/lowstate", LowState_)
    msg = LowState_()
    msg.mode_machine, msg.tick = 5, 1234
    msg.motor_state[20].q, msg.motor_state[3].temperature = 0.25, [31, -2]
    msg.wireless_remote = list(range(40))
    msg.crc = crc.lowstate_crc(msg)
    got = None
    deadline = time.monotonic() + 5
    while got is None and time.monotonic() < deadline:
        pub.write(msg)
        got = sub.wait(0.05)
    assert got is not None and isinstance(got.wireless_remote, bytes)
    assert crc.lowstate_crc(got) == got.crc == msg.crc
    got.motor_state[20].q = 0.5
    assert crc.lowstate_crc(got) != got.crc  # a changed field no longer verifies
