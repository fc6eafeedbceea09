"""One stage engine for run, compare and sweep: a run's shared state and its stages as functions.

    context.py   Run: recipe, device, data, run folder, tracker; ``Run.fit`` trains one stage
    data.py      RunData, make_loader: datasets once, per-stage views and loaders
    folder.py    RunFolder, new_run_dir, resume checks: the run folder's files
    teacher.py   obtain_teacher (trained | as-is | source domain | cached by teacher hash), outputs_cache
    student.py   train_student (scratch or distilled), attach_probe
    pipeline.py  run_stages: teacher → scratch → distilled → instance controls → same-modality control; control_run
    delivery.py  student.holdout: students train without a hold-out of the split; it decides which student is delivered
    controls.py  shuffled pairing within class and the class-mean teacher (what the instance controls train with)
    hallucination.py  the teacher's model on the student's modality, trained to reproduce the privileged teacher
"""

from .context import Run
from .data import RunData, make_loader
from .folder import (ResumeError, RunFolder, check_resumable, find_interrupted, new_run_dir, recipe_differences,
                     write_recipe)
from .pipeline import StageResults, control_run, run_stages, same_modality_control, teacher_and_probe, wants_control
from .student import attach_probe, student_channels, train_student
from .teacher import obtain_teacher, outputs_cache

__all__ = [
    "ResumeError", "Run", "RunData", "RunFolder", "StageResults", "attach_probe", "check_resumable", "control_run",
    "find_interrupted", "make_loader", "new_run_dir", "obtain_teacher", "outputs_cache", "recipe_differences",
    "run_stages", "same_modality_control", "student_channels", "teacher_and_probe", "train_student",
    "wants_control", "write_recipe",
]
