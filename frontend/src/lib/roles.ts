/** What the signed-in user may do, with the reason when not: mirrors lockflow.access.policy. */

export interface Me {
  username: string;
  roles: string[];
}

export interface Verdict {
  allowed: boolean;
  reason: string;
}

const AUTHORS = ["analyst", "approver"];
const GATE_ROLES: Record<string, string[]> = {
  source_review: AUTHORS,
  quality_review: AUTHORS,
  analytics_review: AUTHORS,
  insight_review: AUTHORS,
  action_selection: ["approver"],
};
// Separation of duties: whoever started the run may not choose its final action plan.
const SEPARATED = new Set(["action_selection"]);

const yes: Verdict = { allowed: true, reason: "" };

/** May this user decide this gate of a run started by `owner`? */
export function mayDecide(me: Me | null, gate: string, owner: string): Verdict {
  if (!me) return { allowed: false, reason: "Sign in to decide." };
  const roles = GATE_ROLES[gate] ?? [];
  if (!roles.some((r) => me.roles.includes(r))) {
    return { allowed: false, reason: `Only ${roles.join(" or ")} may decide this gate; you are ${me.roles.join(", ")}.` };
  }
  if (SEPARATED.has(gate) && me.username === owner) {
    return { allowed: false, reason: "Separation of duties: you started this run, so another approver must choose its plan." };
  }
  return yes;
}

/** May this user start runs (upload)? */
export function mayStartRuns(me: Me | null): Verdict {
  if (me && AUTHORS.some((r) => me.roles.includes(r))) return yes;
  return { allowed: false, reason: "Only an analyst or approver may start runs." };
}

export function isAdmin(me: Me | null): boolean {
  return !!me && me.roles.includes("admin");
}

/** May this user edit or delete a source registered by `owner`? (analyst or approver, and its owner) */
export function mayManageSource(me: Me | null, owner: string): Verdict {
  const author = mayStartRuns(me);
  if (!author.allowed) return { allowed: false, reason: "Only an analyst or approver who registered the source may change it." };
  if (me?.username !== owner) return { allowed: false, reason: `Only its owner (${owner}) may change this source.` };
  return yes;
}
