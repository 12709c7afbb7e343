/** The before/after of a gate 2 preview as rows a table can show, and a list's added/dropped/moved. */

export interface StatPair {
  before: Record<string, unknown>;
  after: Record<string, unknown>;
}

export interface StatRow {
  column: string;
  stat: string;
  before: unknown;
  after: unknown;
  changed: boolean;
}

/** One row per column and statistic, flagged where the preview changes it. */
export function statRows(columns: Record<string, StatPair>): StatRow[] {
  const rows: StatRow[] = [];
  for (const [column, pair] of Object.entries(columns)) {
    const stats = new Set([...Object.keys(pair.before ?? {}), ...Object.keys(pair.after ?? {})]);
    for (const stat of stats) {
      const before = pair.before?.[stat];
      const after = pair.after?.[stat];
      rows.push({ column, stat, before, after, changed: !sameValue(before, after) });
    }
  }
  return rows;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a));
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface ListChange {
  added: string[];
  dropped: string[];
  moved: { id: string; from: number; to: number }[];
}

/** What changed between two ranked lists of ids (a refine at gate 4, a new run of analytics). */
export function listChange(before: string[], after: string[]): ListChange {
  const old = new Map(before.map((id, i) => [id, i]));
  const now = new Map(after.map((id, i) => [id, i]));
  return {
    added: after.filter((id) => !old.has(id)),
    dropped: before.filter((id) => !now.has(id)),
    moved: after
      .filter((id) => old.has(id) && old.get(id) !== now.get(id))
      .map((id) => ({ id, from: (old.get(id) ?? 0) + 1, to: (now.get(id) ?? 0) + 1 })),
  };
}

/** Move one item of a list up (-1) or down (+1); the list unchanged at its ends. */
export function move<T>(items: T[], index: number, by: -1 | 1): T[] {
  const to = index + by;
  if (to < 0 || to >= items.length) return items;
  const next = [...items];
  const [item] = next.splice(index, 1);
  next.splice(to, 0, item as T);
  return next;
}

/** The items with the one at `from` put at `to` (a drop, or an arrow key); the same array if nothing moves. */
export function moveTo<T>(items: T[], from: number, to: number): T[] {
  if (from === to || from < 0 || from >= items.length || to < 0 || to >= items.length) return items;
  const next = [...items];
  const [item] = next.splice(from, 1);
  next.splice(to, 0, item as T);
  return next;
}
