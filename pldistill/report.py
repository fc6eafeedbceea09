"""Human-readable results: the table printed at the end of a run and saved as results.md."""

from __future__ import annotations

from .diagnosis import readings
from .engine.balance import term_weights
from .losses.registry import loss_spec
from .teacher_agreement import describe_agreement


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _describe(loss) -> str:
    """'SP (γ=3000; stages t-1↔s-1)', 'KD (weight 1; T=4)' or 'SP (1× CE's gradient; …)': name and symbols."""
    spec = loss_spec(loss.name)
    defaults = spec.params()
    shown = [f"{spec.symbols[k]}={v:g}" if k in spec.symbols else f"{k}={v:g}"
             for k, v in loss.params().items() if k in spec.symbols or v != getattr(defaults, k)]
    weight = f"{spec.weight_symbol}={loss.weight:g}" if spec.weight_symbol else f"weight {loss.weight:g}"
    if loss.relative:
        weight = f"{loss.weight:g}× CE's gradient" + (", every epoch" if loss.rebalance == "every_epoch" else "")
    if loss.warmup_epochs:
        weight += f", warmed up over {loss.warmup_epochs:g} epochs"
    if not loss.pairs:
        return f"{spec.display} ({'; '.join([weight, *shown])})"
    if spec.inputs == "privileged":  # no teacher stage: a student stage predicts the privileged input
        return f"{spec.display} ({'; '.join([weight, *shown, 'from stages ' + ', '.join(f's{p.student}' for p in loss.pairs)])})"
    stages = ", ".join(f"t{p.teacher}↔s{p.student}" for p in loss.pairs) + (", pooled" if loss.pool else "") \
        + (", projected" if loss.project else "")
    stages += ", over the global batch" if loss.scope == "global" else ""
    return f"{spec.display} ({'; '.join([weight, *shown, 'stages ' + stages])})"


def describe_losses(losses) -> str:
    return " + ".join(_describe(loss) for loss in losses)


def _distilled_students(results: dict) -> dict[str, dict]:
    """Every student of a run trained with a teacher, by role."""
    out = {"distilled": results["students"]["distilled"]}
    if results.get("control"):
        out["control"] = results["control"]["student"]
    instance = results.get("instance_controls") or {}
    out.update({key: instance[key] for key in ("shuffled", "class_mean") if key in instance})
    return out


def health_lines(results: dict) -> list[str]:
    """The health check's findings (engine/health.py) for every distilled student, one line each."""
    return [f["message"] for student in _distilled_students(results).values() for f in student.get("health", [])]


def weight_lines(results: dict) -> list[str]:
    """Each term's weight as trained and its measured gradient ratio to CE, from the distilled student's record."""
    history = results["students"]["distilled"]["history"]
    weights = term_weights(history[-1])
    lines = [f"{term}: weight {w['weight']:.4g}, weighted gradient "
             f"{w['grad_ratio'] if w['grad_ratio'] is not None else float('nan'):.2g}× CE's on the first steps"
             for term, w in weights.items()]
    conflicts = [h for h in history if "conflict/fraction" in h]
    if conflicts:  # gradient surgery ran or measured (engine/conflict.py): how hard the teacher pulled against CE
        first, last = conflicts[0], conflicts[-1]
        done = "conflicts with CE projected out" if last.get("conflict/projected", 1.0) else "conflicts with CE measured"
        lines.append(f"{done}: the terms' gradient opposed CE's on "
                     f"{100 * first['conflict/fraction']:.0f}% of epoch 1's steps (mean cosine "
                     f"{first['conflict/cosine']:+.2f}) and {100 * last['conflict/fraction']:.0f}% of the last "
                     f"epoch's ({last['conflict/cosine']:+.2f})")
    return lines


def results_table(results: dict, recipe) -> str:
    """Teacher, scratch student and distilled student: what each saw, size, accuracy."""
    t, s = results["teacher"], results["students"]
    losses = describe_losses(recipe.distill.losses)
    rows = [
        ("teacher", t["model"], t["modality"], t["modality"], t["params"], t["test_acc"],
         t.get("note") or ("reused" if t.get("reused") else "CE")),
        ("student (scratch)", s["scratch"]["model"], s["scratch"]["modality"], s["scratch"]["modality"],
         s["scratch"]["params"], s["scratch"]["test_acc"], "CE"),
        ("student (distilled)", s["distilled"]["model"], f"{s['distilled']['modality']} + {t['modality']} teacher",
         s["distilled"]["modality"], s["distilled"]["params"], s["distilled"]["test_acc"], f"CE + {losses}"),
    ]
    lines = [
        f"# {results['recipe']} (seed {results['seed']})",
        "",
        f"{results['dataset']['kind']}: {results['dataset']['num_train']} train / "
        f"{results['dataset']['num_test']} test samples, {len(results['dataset']['classes'])} classes; "
        f"device {results['device']}.",
        "",
        "| role | model | trained on | evaluated on | params | test acc | loss |",
        "|---|---|---|---|---:|---:|---|",
    ]
    if "target_test_acc" in t:  # domain transfer: the teacher trained on other data, measured on this
        kind = t["source_data"]["kind"]
        rows[0] = (f"teacher (source domain: {kind})", *rows[0][1:6], "CE on teacher.data")
        rows.insert(1, ("teacher, on this recipe's data", t["model"], f"{t['modality']} (source domain)",
                        t["modality"], t["params"], t["target_test_acc"], "no adaptation"))
    control = results.get("control")
    if control:
        ct, cs = control["teacher"], control["student"]
        rows += [
            ("control teacher", ct["model"], ct["modality"], ct["modality"], ct["params"], ct["test_acc"],
             "reused" if ct.get("reused") else "CE (same model and budget as the teacher)"),
            ("student (control)", cs["model"], f"{cs['modality']} + {ct['modality']} teacher", cs["modality"],
             cs["params"], cs["test_acc"], f"CE + {losses}"),
        ]
    instance = results.get("instance_controls")
    if instance:
        for key, role, how in (("shuffled", "student (shuffled pairing)", "teacher on another same-class sample"),
                               ("class_mean", "student (class-mean teacher)", "teacher's class means")):
            c = instance[key]
            rows.append((role, c["model"], f"{c['modality']} + {t['modality']} {how}", c["modality"], c["params"],
                         c["test_acc"], f"CE + {losses}"))
    for role, model, train_on, eval_on, params, acc, loss in rows:
        lines.append(f"| {role} | {model} | {train_on} | {eval_on} | {_params(params)} | {_pct(acc)} | {loss} |")
    gain = 100 * results["distill_gain"]
    lines += ["", f"Distillation gain over the scratch student: {gain:+.1f} points."]
    delivered = results.get("delivered")
    if delivered:
        lines.append(f"Delivered (student.holdout): the {delivered['student']} student, {_pct(delivered['test_acc'])} "
                     f"on the test set — {delivered['reason']}.")
    if control:
        lines.append(f"Privileged gain (distilled − control, the same distillation from a teacher on "
                     f"{control['teacher']['modality']!r}): {100 * control['privileged_gain']:+.1f} points.")
        if control.get("teacher_agreement"):
            lines.append(f"Teacher agreement (the {results['teacher']['modality']!r} teacher against the "
                         f"{control['teacher']['modality']!r} one, on the probe; docs/controls.md): "
                         f"{describe_agreement(control['teacher_agreement'])}.")
    if instance:
        lines.append(f"Instance gain (distilled − shuffled pairing): {100 * instance['instance_gain']:+.1f} points; "
                     f"beyond class means (distilled − class-mean teacher): "
                     f"{100 * instance['beyond_class_mean']:+.1f} points.")
    lines += [f"Reading: {r}" for r in readings(results)]
    weights = weight_lines(results)
    if weights:
        lines.append("Distillation weights (distilled student): " + "; ".join(weights) + ".")
    health = health_lines(results)
    lines += health or ["Health check: no distilled student fell behind the scratch student or was dominated by "
                        "one term."]
    lines.append("")
    return "\n".join(lines)
