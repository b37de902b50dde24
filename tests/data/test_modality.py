"""modality.json schema and checks against info.json / parquet columns / files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.modality import check_modality, default_modality, parse_modality

INFO = {
    "features": {
        "observation.state": {"dtype": "float64", "shape": [10]},
        "action": {"dtype": "float64", "shape": [10]},
        "observation.images.front": {"dtype": "video", "shape": [64, 64, 3]},
        "task_index": {"dtype": "int64", "shape": [1]},
    }
}
COLUMNS = ["observation.state", "action", "task_index", "timestamp"]


def _mod(state=None, action=None, video=None, annotation=None):
    return parse_modality(
        {
            "state": state if state is not None else {"arm": {"start": 0, "end": 10}},
            "action": action if action is not None else {"arm": {"start": 0, "end": 10}},
            "video": video if video is not None else {"front": {"original_key": "observation.images.front"}},
            "annotation": annotation
            if annotation is not None
            else {"human.task_description": {"original_key": "task_index"}},
        }
    )


def _errors(issues):
    return [str(i) for i in issues if i.severity == "error"]


def test_valid_layout_has_no_issues():
    assert check_modality(_mod(), INFO, columns=COLUMNS, video_exists=lambda k: []) == []


def test_slice_outside_declared_width():
    mod = _mod(state={"arm": {"start": 0, "end": 7}, "hand": {"start": 7, "end": 12}})
    errs = _errors(check_modality(mod, INFO, columns=COLUMNS))
    assert len(errs) == 1
    assert "[state.hand]: slice 7:12 exceeds the width 10 of 'observation.state'" in errs[0]
    assert "Fix: use indices within 0..10" in errs[0]


def test_overlap_warns_as_upstream_allows_it():
    # upstream's N1.6 arx layout reads an end-effector key over joint dims
    mod = _mod(action={"a": {"start": 0, "end": 6}, "b": {"start": 5, "end": 10}})
    issues = check_modality(mod, INFO, columns=COLUMNS)
    assert not _errors(issues)
    (w,) = [i for i in issues if i.check == "modality.overlap"]
    assert w.severity == "warning" and "[action.b]: slice 5:10 overlaps action.a at dim 5" in str(w)


def test_stacked_rotations_warn():
    info = {"features": {**INFO["features"], "observation.state": {"dtype": "float64", "shape": [18]}}}
    mod = _mod(state={"r": {"start": 0, "end": 18, "rotation_type": "rotation_6d"}})
    issues = check_modality(mod, info, columns=COLUMNS)
    assert not _errors(issues)
    (w,) = [i for i in issues if i.check == "modality.rotation_stacked"]
    assert "18 dims = 3 stacked rotation_6d rotations of 6" in w.message
    bad = _mod(
        state={"r": {"start": 0, "end": 8, "rotation_type": "rotation_6d"}, "x": {"start": 8, "end": 10}}
    )
    assert any(
        "needs 6 dims (or a multiple" in e for e in _errors(check_modality(bad, INFO, columns=COLUMNS))
    )


def test_uncovered_dims_warn():
    mod = _mod(state={"a": {"start": 0, "end": 3}, "b": {"start": 6, "end": 8}})
    issues = check_modality(mod, INFO, columns=COLUMNS)
    assert not _errors(issues)
    (w,) = [i for i in issues if i.check == "modality.uncovered"]
    assert w.severity == "warning" and "5 of 10 dims are not covered by any key: 3-5, 8-9" in w.message


@pytest.mark.parametrize(
    "rot,width,ok",
    [
        ("quaternion", 4, True),
        ("quaternion", 3, False),
        ("rotation_6d", 6, True),
        ("matrix", 9, True),
        ("axis_angle", 3, True),
        ("euler_angles_rpy", 4, False),
    ],
)
def test_rotation_width(rot, width, ok):
    mod = _mod(
        state={"r": {"start": 0, "end": width, "rotation_type": rot}, "x": {"start": width, "end": 10}}
    )
    errs = _errors(check_modality(mod, INFO, columns=COLUMNS))
    assert (not errs) == ok
    if not ok:
        assert f"rotation_type {rot} needs" in errs[0] and f"has {width}" in errs[0]


def test_unknown_rotation_type_is_schema_error():
    with pytest.raises(DatasetError, match=r"state.r.rotation_type.*unknown rotation_type 'quat'"):
        _mod(state={"r": {"start": 0, "end": 4, "rotation_type": "quat"}})


def test_end_before_start():
    with pytest.raises(DatasetError, match=r"\[state.arm\].*end \(2\) must be greater than start \(5\)"):
        _mod(state={"arm": {"start": 5, "end": 2}})


def test_video_key_not_in_info():
    mod = _mod(video={"wrist": {"original_key": "observation.images.wrist"}})
    errs = _errors(check_modality(mod, INFO, columns=COLUMNS))
    assert (
        "[video.wrist]: original_key 'observation.images.wrist' is not a feature in meta/info.json" in errs[0]
    )
    assert "observation.images.front" in errs[0]


def test_video_files_missing():
    errs = _errors(check_modality(_mod(), INFO, columns=COLUMNS, video_exists=lambda k: ["videos/x.mp4"]))
    assert "[video.front]: 1 video file(s) missing: videos/x.mp4" in errs[0]


def test_annotation_column_missing():
    mod = _mod(annotation={"human.action.task_description": {}})
    errs = _errors(check_modality(mod, INFO, columns=COLUMNS))
    assert (
        "[annotation.human.action.task_description]: column 'annotation.human.action.task_description' is not in the episode parquet"
        in errs[0]
    )
    assert "task_index" in errs[0]


def test_original_key_not_a_feature():
    mod = _mod(state={"arm": {"start": 0, "end": 10, "original_key": "observation.joints"}})
    errs = _errors(check_modality(mod, INFO, columns=COLUMNS))
    assert "[state.arm]: original_key 'observation.joints' is not a feature" in errs[0]


def test_default_modality():
    mod = default_modality(INFO, COLUMNS)
    assert mod.state["state"].end == 10 and mod.action["action"].end == 10
    assert mod.video["front"].original_key == "observation.images.front"
    assert mod.annotation["human.task_description"].original_key == "task_index"
    assert check_modality(mod, INFO, columns=COLUMNS) == []


def test_wrong_dims_on_demo_dataset(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "modality.json"
    mod = json.loads(p.read_text())
    mod["action"]["waist"] = {"start": 41, "end": 46}
    p.write_text(json.dumps(mod))
    with pytest.raises(
        DatasetError, match=r"meta/modality.json \[action.waist\]: slice 41:46 exceeds the width 44"
    ):
        load_meta(pick_place_copy)
    meta = load_meta(pick_place_copy, strict=False)
    assert [i.check for i in meta.issues if i.severity == "error"] == ["modality.out_of_range"]
