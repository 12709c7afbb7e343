/** Formatters for what the UI shows: durations, sizes, times, shares, numbers and state names. */

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  if (m < 60) return `${m} min ${rest} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Milliseconds between two ISO times (the server's naive ones are UTC), or null if one is missing. */
export function between(start: string | null | undefined, end: string | null | undefined): number | null {
  if (!start || !end) return null;
  return parseUtc(end) - parseUtc(start);
}

/** An ISO timestamp as UTC milliseconds; a time without zone is UTC (how the server writes them). */
export function parseUtc(iso: string): number {
  return Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  return new Date(parseUtc(iso)).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function formatShare(share: number): string {
  const pct = share * 100;
  return `${pct < 1 && pct > 0 ? pct.toFixed(2) : pct.toFixed(1)}%`;
}

export function formatNumber(value: unknown, digits = 3): string {
  if (typeof value !== "number") return value == null ? "–" : String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.001 || abs >= 1e6)) return value.toExponential(2);
  return value.toLocaleString("en-US", { maximumFractionDigits: digits });
}

export interface RunSummary {
  status: string;
  open_gate?: string | null;
}

/** What a person calls a run's state: "waiting for a decision", never "deferred". */
export function runState(run: RunSummary): string {
  if (run.status === "waiting" || (run.status === "running" && run.open_gate)) return "waiting for a decision";
  if (run.status === "decided") return "decided, being applied";
  return run.status;
}

export const GATE_LABELS: Record<string, string> = {
  source_review: "Gate 1 · Source review",
  quality_review: "Gate 2 · Quality review",
  analytics_review: "Gate 3 · Analytics review",
  insight_review: "Gate 4 · Insight review",
  action_selection: "Gate 5 · Action selection",
};

export function gateLabel(gate: string | null | undefined): string {
  return gate ? (GATE_LABELS[gate] ?? gate) : "–";
}

/** A preview count: the figure itself when exact, else "≈ estimate ± margin" (a 95 % interval). */
export function formatEstimate(value: unknown, margin: unknown, exact: boolean): string {
  if (exact || typeof margin !== "number") return formatNumber(value);
  return `≈ ${formatNumber(value)} ± ${formatNumber(margin)}`;
}
