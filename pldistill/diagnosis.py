"""What a run's own controls say about why distillation helped or not, in plain sentences.

The table gives the numbers; a newcomer still has to know which comparison
answers which question. Each reading below is one comparison the run already
made, stated only when its numbers say it (one seed: a reading, not a
significance test; the comparisons over seeds are `pldistill compare`'s):

- **the teacher's model is weaker at the student's input than the student**:
  the control teacher (same model and budget, trained on the student's
  modality) is no more accurate than the scratch student. No gain can then
  come from a stronger model, only from the privileged input (on
  `convnext_atto` → `regnetx_002`, RESULTS.md, every teacher signal tried
  cost the student points);
- **any teacher did as much**: the control student gained over scratch at
  least as much as the distilled one, so the gain is having a teacher, not
  the privileged input (privileged gain ≤ 0);
- **the privileged input added**: the distilled student beat the control;
- **class-level, not instance knowledge**: the teacher reading another sample
  of the same class (shuffled pairing), or its per-class mean outputs, taught
  as well as the paired teacher (docs/controls.md).
"""

from __future__ import annotations

__all__ = ["readings"]


def _points(x: float) -> str:
    return f"{100 * x:+.1f} points"


def readings(results: dict) -> list[str]:
    """One sentence per comparison of the run that explains its distillation gain; [] without controls."""
    out = []
    scratch = results["students"]["scratch"]["test_acc"]
    control = results.get("control")
    if control:
        teacher, student = control["teacher"], control["student"]
        modality = teacher["modality"]
        if teacher.get("test_acc") is not None and teacher["test_acc"] <= scratch:
            out.append(f"The teacher's model trained on {modality!r} reaches {100 * teacher['test_acc']:.1f}%, no "
                       f"more than the student from scratch ({100 * scratch:.1f}%): at the student's input the "
                       "teacher's model is the weaker network, so no gain here can come from a stronger model, only "
                       "from what the privileged input adds; a teacher model stronger at this input may serve "
                       "better.")
        gain, control_gain = results["distill_gain"], student["test_acc"] - scratch
        if control["privileged_gain"] > 0:
            out.append(f"On this seed the privileged input added {_points(control['privileged_gain'])} beyond the same "
                       f"distillation from a teacher on {modality!r} (which gained {_points(control_gain)} over "
                       "scratch).")
        elif control_gain > 0:
            out.append(f"On this seed a teacher on the student's own {modality!r} did as much or more "
                       f"({_points(control_gain)} over scratch, against {_points(gain)}): the gain comes from having "
                       "a teacher, not from the privileged input.")
    instance = results.get("instance_controls")
    if instance and results["distill_gain"] > 0:
        level = [name for key, name in (("instance_gain", "shuffled pairing (a same-class sample's teacher)"),
                                        ("beyond_class_mean", "the teacher's per-class mean outputs"))
                 if instance[key] <= 0]
        if level:
            out.append(f"Class-level, not instance knowledge: {' and '.join(level)} taught as well as the paired "
                       "teacher, so what the student gained is what the teacher knows about classes.")
        else:
            out.append(f"Instance knowledge: the paired teacher taught {_points(instance['instance_gain'])} more "
                       "than a same-class sample's teacher, and "
                       f"{_points(instance['beyond_class_mean'])} more than its class means.")
    return out
