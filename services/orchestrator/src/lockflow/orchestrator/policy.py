"""Decision policies: answers for gates taken from a YAML file (or `--yes`) instead of a person.

A policy maps a gate to one decision, or to a list used in order on each visit of that gate
(the last one repeats), so a policy can express a loop-back such as 'modify, then accept'.
Shorthands resolve against the open request:

- `choices: top` (what `--yes` uses): for each finding, its top-ranked resolution if that is
  low-risk (exact duplicates, trimmed spaces, repaired text, an overwhelming mode ...) and
  changes data; every other finding is left as it is for a person (no value changes, and no flag
  column either: one per finding would change the shape analytics sees), so it stays an
  unresolved finding that the report and stage 6's quality actions show. The rationale lists
  what was fixed and what was left, and why. If nothing is chosen the gate is answered
  `accept_as_is`.
- `choices: top_any`: every finding's top-ranked resolution whatever its risk (it may impute,
  cap, drop rows or columns); a choice the gate would refuse next to the others is replaced by
  `flag_only` (or left out), and the rationale says so.
- `selected: all` or `selected: {top: N}`: actions in recommended order.
"""

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from lockflow.common.errors import InvalidInput
from lockflow.common.kinds import is_low_risk
from lockflow.common.models import Model
from lockflow.common.pipeline import DecisionContext, Gate, check_quality_choices


class PolicyDecision(Model):
    """One scripted answer to a gate."""

    option: str
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = "decided by policy"


Policy = dict[Gate, list[PolicyDecision]]


def default_policy() -> Policy:
    """`--yes`: approve, apply the low-risk top fixes (the rest left for a person), accept, choose all."""
    return {
        Gate.SOURCE_REVIEW: [PolicyDecision(option="approve", rationale="--yes")],
        Gate.QUALITY_REVIEW: [PolicyDecision(option="apply", params={"choices": "top"}, rationale="--yes")],
        Gate.ANALYTICS_REVIEW: [PolicyDecision(option="accept", rationale="--yes")],
        Gate.INSIGHT_REVIEW: [PolicyDecision(option="accept", rationale="--yes")],
        Gate.ACTION_SELECTION: [
            PolicyDecision(option="choose", params={"selected": "all"}, rationale="--yes")
        ],
    }


def load_policy(path: Path) -> Policy:
    """Read a policy file; errors name the file and the gate."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"no such policy file: {path}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a mapping of gate -> decision")
    policy: Policy = {}
    for key, value in raw.items():
        try:
            gate = Gate(key)
        except ValueError as exc:
            raise InvalidInput(
                f"{path}: unknown gate {key!r}; gates: {', '.join(g.value for g in Gate)}"
            ) from exc
        entries = value if isinstance(value, list) else [value]
        try:
            policy[gate] = [PolicyDecision.model_validate(e) for e in entries]
        except ValidationError as exc:
            raise InvalidInput(f"{path}: gate {key}: {exc.errors()[0]['msg']}") from exc
    return policy


def resolve(policy: Policy, *, request: dict[str, Any], visit: int) -> PolicyDecision | None:
    """The policy's answer to an open request on its n-th visit (0-based), shorthands expanded."""
    entries = policy.get(Gate(request["gate"]))
    if not entries:
        return None
    chosen = entries[min(visit, len(entries) - 1)]
    params = dict(chosen.params)
    context = request["context"]
    if chosen.option == "apply" and params.get("choices") in ("top", "top_any"):
        choices, why = top_choices(context.get("findings", []), any_risk=params["choices"] == "top_any")
        if not choices:
            return PolicyDecision(option="accept_as_is", rationale=f"{chosen.rationale}: {why}")
        return PolicyDecision(
            option="apply", params={"choices": choices}, rationale=f"{chosen.rationale}: {why}"
        )
    if chosen.option == "choose":
        ids = [item["id"] for item in context.get("items", [])]
        selected = params.get("selected")
        if selected == "all":
            params["selected"] = ids
        elif isinstance(selected, dict) and "top" in selected:
            params["selected"] = ids[: int(selected["top"])]
    return PolicyDecision(option=chosen.option, params=params, rationale=chosen.rationale)


def top_choices(findings: list[dict[str, Any]], *, any_risk: bool) -> tuple[list[dict[str, Any]], str]:
    """The `top` (low-risk only) or `top_any` choices for gate 2's findings, and a rationale."""
    fixed: list[str] = []
    left: list[str] = []
    choices: list[dict[str, Any]] = []
    for f in findings:
        if not f.get("resolutions"):
            continue
        top = f["resolutions"][0]
        risk = top.get("risk", "high")  # an older producer's resolution: judged high
        if any_risk or (is_low_risk(risk) and top["strategy"] != "flag_only"):
            choices.append({"finding_id": f["id"], "strategy": top["strategy"]})
            fixed.append(f"{f['id']} ({top['strategy']})")
        elif top["strategy"] == "flag_only":
            left.append(f"{f['id']} (nothing to change in the data)")
        else:
            left.append(f"{f['id']} ({top['strategy']} is {risk}-risk: {top.get('changes') or 'not judged'})")
    choices, refused = _compatible(choices, findings)
    parts = [
        f"fixed {len(fixed)}: {'; '.join(fixed)}" if fixed else "fixed none",
        f"left {len(left)} for a person: {'; '.join(left)}" if left else "",
        f"replaced {len(refused)} the gate would refuse beside the others: {'; '.join(refused)}"
        if refused
        else "",
    ]
    if not findings:
        parts = ["no findings to fix"]
    return choices, "; ".join(p for p in parts if p)


def _compatible(
    choices: list[dict[str, Any]], findings: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The choices with any the gate would refuse (beside the others) replaced by flag_only or dropped."""
    context = DecisionContext(
        finding_strategies={f["id"]: frozenset(r["strategy"] for r in f["resolutions"]) for f in findings},
        finding_columns={f["id"]: tuple(f["columns"]) for f in findings},
        finding_params={
            f["id"]: {r["strategy"]: frozenset(r.get("params", {})) for r in f["resolutions"]}
            for f in findings
        },
        finding_defaults={
            f["id"]: {r["strategy"]: dict(r.get("params", {})) for r in f["resolutions"]} for f in findings
        },
    )
    offered = {f["id"]: {r["strategy"] for r in f["resolutions"]} for f in findings}
    kept: list[dict[str, Any]] = []
    refused: list[str] = []
    for choice in choices:
        trial = [*kept, choice]
        try:
            check_quality_choices({"choices": trial}, context)
            kept.append(choice)
            continue
        except InvalidInput as exc:
            reason = str(exc)
        fallback = {"finding_id": choice["finding_id"], "strategy": "flag_only"}
        if choice["strategy"] != "flag_only" and "flag_only" in offered[choice["finding_id"]]:
            kept.append(fallback)
            refused.append(f"{choice['finding_id']} flagged ({reason})")
        else:
            refused.append(f"{choice['finding_id']} left ({reason})")
    return kept, refused
