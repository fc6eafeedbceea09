"""The report's readings: each one says what a comparison the run made shows, and only when its numbers say it."""

from pldistill.diagnosis import readings
from pldistill.report import results_table


def results(scratch=0.671, distilled=0.519, control_teacher=0.508, control_student=0.577, instance=None):
    """A run's results.json in the shape run.py writes (the RegNetX pair of RESULTS.md by default, seed 1)."""
    student = {"model": "regnetx_002", "modality": "rgb", "params": 2_000_000}
    out = {
        "recipe": "depth_to_rgb", "seed": 1, "device": "cpu",
        "dataset": {"kind": "synthetic_shapes", "num_train": 4000, "num_test": 1000, "classes": list("abcd")},
        "teacher": {"model": "convnext_atto", "modality": "depth", "params": 3_000_000, "test_acc": 0.893},
        "students": {"scratch": {**student, "test_acc": scratch, "history": []},
                     "distilled": {**student, "test_acc": distilled, "history": [{}]}},
        "distill_gain": distilled - scratch,
        "control": {"teacher": {"model": "convnext_atto", "modality": "rgb", "params": 3_000_000,
                                "test_acc": control_teacher},
                    "student": {**student, "test_acc": control_student},
                    "privileged_gain": distilled - control_student},
    }
    if instance is not None:
        shuffled, class_mean = instance
        out["instance_controls"] = {
            "shuffled": {**student, "test_acc": shuffled}, "class_mean": {**student, "test_acc": class_mean},
            "instance_gain": distilled - shuffled, "beyond_class_mean": distilled - class_mean}
    return out


def test_a_teacher_model_weaker_at_the_students_input_than_the_scratch_student_is_named_with_both_numbers():
    said = readings(results())
    assert said[0].startswith("The teacher's model trained on 'rgb' reaches 50.8%, no more than the student from "
                              "scratch (67.1%)")
    assert len(said) == 1  # the RGB teacher cost points too (57.7 < 67.1): no "any teacher did as much"


def test_a_strong_control_teacher_says_nothing_about_weakness_and_a_control_that_helped_more_is_said():
    # the flagship's seed 0 of the README: scratch 37.4, distilled 50.6, RGB teacher 90.1, control 50.1
    said = readings(results(scratch=0.374, distilled=0.506, control_teacher=0.901, control_student=0.501))
    assert said == ["On this seed the privileged input added +0.5 points beyond the same distillation from a "
                    "teacher on 'rgb' (which gained +12.7 points over scratch)."]
    said = readings(results(scratch=0.374, distilled=0.45, control_teacher=0.901, control_student=0.501))
    assert said == ["On this seed a teacher on the student's own 'rgb' did as much or more (+12.7 points over "
                    "scratch, against +7.6 points): the gain comes from having a teacher, not from the privileged "
                    "input."]


def test_instance_controls_tell_class_level_from_instance_knowledge():
    base = dict(scratch=0.374, distilled=0.506, control_teacher=0.901, control_student=0.501)
    class_level = readings(results(**base, instance=(0.52, 0.49)))[-1]
    assert class_level.startswith("Class-level, not instance knowledge: shuffled pairing (a same-class sample's "
                                  "teacher) taught as well as the paired teacher")
    instance = readings(results(**base, instance=(0.433, 0.43)))[-1]
    assert instance == ("Instance knowledge: the paired teacher taught +7.3 points more than a same-class sample's "
                        "teacher, and +7.6 points more than its class means.")
    hurt = results(scratch=0.671, distilled=0.519, control_teacher=0.9, control_student=0.6, instance=(0.6, 0.6))
    assert not any("knowledge" in r for r in readings(hurt))  # no gain: nothing to attribute


def test_a_run_without_controls_has_no_readings_and_the_printed_table_carries_them():
    bare = results()
    del bare["control"]
    assert readings(bare) == []
    printed = results_table(results(), _Recipe())
    assert "Reading: The teacher's model trained on 'rgb' reaches 50.8%" in printed


class _Recipe:
    class distill:  # noqa: N801  (the attribute the table reads)
        losses = []
