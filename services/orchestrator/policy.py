"""Decision policies: answers for gates taken from a YAML file (or `--yes`) instead of a person.

A policy maps a gate to one decision, or to a list used in order on each visit of that gate
(the last one repeats), so a policy can express a loop-back such as 'modify, then accept'.
Two shorthands resolve against the open request: `choices: top` (apply the top-ranked resolution
of every finding) and `selected: all` or `selected: {top: N}` (actions in recommended order).
"""

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from lockflow.common.errors import InvalidInput
from lockflow.common.models import Model
from lockflow.common.pipeline import Gate


class PolicyDecision(Model):
    """One scripted answer to a gate."""

    option: str
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = "decided by policy"


Policy = dict[Gate, list[PolicyDecision]]


def default_policy() -> Policy:
    """`--yes`: approve, apply each finding's top fix, accept, accept, choose every action."""
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
    if chosen.option == "apply" and params.get("choices") == "top":
        choices = [
            {"finding_id": f["id"], "strategy": f["resolutions"][0]["strategy"]}
            for f in context.get("findings", [])
            if f["resolutions"]
        ]
        if not choices:
            return PolicyDecision(option="accept_as_is", rationale=f"{chosen.rationale} (no findings to fix)")
        params["choices"] = choices
    if chosen.option == "choose":
        ids = [item["id"] for item in context.get("items", [])]
        selected = params.get("selected")
        if selected == "all":
            params["selected"] = ids
        elif isinstance(selected, dict) and "top" in selected:
            params["selected"] = ids[: int(selected["top"])]
    return PolicyDecision(option=chosen.option, params=params, rationale=chosen.rationale)
