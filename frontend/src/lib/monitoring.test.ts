import { describe, expect, it } from "vitest";
import { deadlineText, formatAge, qualitySpec, stageSpec, stateRows } from "./monitoring";

const now = Date.parse("2026-12-02T12:00:00Z");

describe("monitoring formatters", () => {
  it("says how long a decision waited and how its deadline stands", () => {
    expect(formatAge(7500)).toBe("2 h 5 min");
    expect(formatAge(-3)).toBe("0 ms");
    expect(deadlineText("2026-12-02T15:10:00+00:00", now)).toEqual({ text: "due in 3 h 10 min", overdue: false });
    expect(deadlineText("2026-12-02T11:40:00", now)).toEqual({ text: "overdue by 20 min 0 s", overdue: true });
    expect(deadlineText(null, now)).toEqual({ text: "no deadline", overdue: false });
  });

  it("orders the states, active first, with the completed runs that have open findings beside them", () => {
    expect(stateRows({ failed: 1, completed: 3, waiting: 2, odd: 1 }, 1)).toEqual([
      { state: "waiting", count: 2 },
      { state: "completed", count: 3 },
      { state: "completed with open findings", count: 1 },
      { state: "failed", count: 1 },
      { state: "odd", count: 1 },
    ]);
    expect(stateRows({}, 0)).toEqual([]);
  });

  it("charts quality on the fixed 0-100 scale and each stage's median and p95", () => {
    const q = qualitySpec([{ run_id: "r", run_name: "a", source: "s", score: 87.5, recorded_at: "2026-12-02T10:00:00" }]);
    expect((q.encoding as { y: { scale: unknown } }).y.scale).toEqual({ domain: [0, 100] });
    const s = stageSpec([
      { step: "ingest", attempts: 2, succeeded: 2, failed: 0, finished: 2, mean_seconds: 2, median_seconds: 2, p95_seconds: 3, max_seconds: 3 },
      { step: "quality", attempts: 1, succeeded: 0, failed: 1, finished: 0, mean_seconds: null, median_seconds: null, p95_seconds: null, max_seconds: null },
    ]);
    expect((s.data as { values: unknown[] }).values).toEqual([
      { step: "ingest", measure: "median", seconds: 2 },
      { step: "ingest", measure: "p95", seconds: 3 },
    ]);
  });
});
