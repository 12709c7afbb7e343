import { describe, expect, it } from "vitest";
import { chartRows, defaultRules, liveSpec, mergeWindows, policyParams, ruleProblems, type KindOffer, type StreamWindow } from "./streams";

const w = (id: number, minute: number, extra: Partial<StreamWindow> = {}): StreamWindow => ({
  id,
  window_start: `2026-12-02T04:${String(minute).padStart(2, "0")}:00+00:00`,
  window_end: `2026-12-02T04:${String(minute + 1).padStart(2, "0")}:00+00:00`,
  records: 10 * id,
  findings: {},
  quality_score: 90,
  freshness_p99_seconds: 1.5,
  policy_version: null,
  mode: "hold",
  reopened: null,
  ...extra,
});

const kinds: KindOffer[] = [
  { kind: "null_value", label: "Null value", words: "missing required values", seen: true, records: 3, default_action: "repair_last_median", actions: ["quarantine", "repair_constant", "repair_last_median", "flag"], rule: null },
  { kind: "late_record", label: "Late record", words: "late records", seen: false, records: 0, default_action: "flag", actions: ["flag", "quarantine"], rule: { kind: "late_record", action: "quarantine", field: null } },
  { kind: "malformed", label: "Malformed", words: "malformed records", seen: false, records: 0, default_action: "quarantine", actions: ["quarantine"], rule: null },
];

describe("the live windows", () => {
  it("merge by id in time order, the newest kept", () => {
    const merged = mergeWindows([w(1, 0), w(2, 1)], [w(2, 1, { records: 99 }), w(3, 2)], 2);
    expect(merged.map((x) => [x.id, x.records])).toEqual([[2, 99], [3, 30]]);
  });

  it("chart volume, score, violations and lag per window (no lag row when unknown)", () => {
    const rows = chartRows([w(1, 0, { findings: { null_value: 2, duplicate_key: 1 } }), w(2, 1, { freshness_p99_seconds: null })]);
    expect(rows.filter((r) => r.measure === "Violations").map((r) => r.value)).toEqual([3, 0]);
    expect(rows.filter((r) => r.measure === "Lag p99 (s)")).toHaveLength(1);
    const spec = liveSpec([w(1, 0)]) as { data: { values: unknown[] } };
    expect(spec.data.values).toHaveLength(4);
  });
});

describe("gate 2's rules", () => {
  it("start from the rule in force or the kind's default, for the kinds seen or ruled", () => {
    expect(defaultRules(kinds, ["null_value"])).toEqual([
      { kind: "null_value", action: "repair_last_median", field: "", constant: "" },
      { kind: "late_record", action: "quarantine", field: "", constant: "" },
    ]);
  });

  it("are sent with a JSON constant only for repair_constant", () => {
    const params = policyParams([{ kind: "null_value", action: "repair_constant", field: "amount", constant: "0" }, { kind: "late_record", action: "flag", field: "", constant: "9" }], 0.1, 20);
    expect(params).toEqual({
      rules: [{ kind: "null_value", action: "repair_constant", field: "amount", constant: 0 }, { kind: "late_record", action: "flag" }],
      reopen_violation_rate: 0.1,
      reopen_score_drop: 20,
    });
  });

  it("name what is missing or does not apply", () => {
    expect(ruleProblems([], kinds, ["null_value"])).toEqual(["Give a rule for: null_value.", "Give at least one rule."]);
    expect(ruleProblems([{ kind: "malformed", action: "flag", field: "", constant: "" }, { kind: "null_value", action: "repair_constant", field: "", constant: "" }], kinds, ["null_value"])).toEqual([
      "Malformed: flag does not apply.",
      "Null value: repair_constant needs a constant.",
    ]);
  });
});
