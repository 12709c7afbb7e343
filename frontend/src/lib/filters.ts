/** The runs list's filters as they live in the URL (?status=&q=&page=), typed both ways. */
import type { RunRow } from "../api/queries";
import { runState } from "./format";

export const STATUSES = ["all", "running", "waiting", "completed", "failed", "aborted"] as const;
export type StatusFilter = (typeof STATUSES)[number];
export const PAGE_SIZE = 20;

export interface RunFilters {
  status: StatusFilter;
  q: string;
  page: number;
}

export function parseFilters(params: URLSearchParams): RunFilters {
  const status = params.get("status") ?? "all";
  const page = Number(params.get("page") ?? "1");
  return {
    status: (STATUSES as readonly string[]).includes(status) ? (status as StatusFilter) : "all",
    q: params.get("q") ?? "",
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

export function filtersToParams(filters: RunFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (filters.status !== "all") out.status = filters.status;
  if (filters.q) out.q = filters.q;
  if (filters.page > 1) out.page = String(filters.page);
  return out;
}

export function matches(run: RunRow, filters: RunFilters): boolean {
  const state = runState(run);
  const byStatus =
    filters.status === "all" ||
    (filters.status === "waiting"
      ? state === "waiting for a decision"
      : filters.status === "running"
        ? state === "running" || run.status === "decided"
        : run.status === filters.status);
  const q = filters.q.trim().toLowerCase();
  return byStatus && (!q || run.name.toLowerCase().includes(q) || run.id.startsWith(q) || run.requested_by.toLowerCase().includes(q));
}

/** The page of the filtered runs and how many match in all. */
export function filterRuns(runs: RunRow[], filters: RunFilters): { rows: RunRow[]; total: number; pages: number } {
  const found = runs.filter((r) => matches(r, filters));
  const start = (filters.page - 1) * PAGE_SIZE;
  return { rows: found.slice(start, start + PAGE_SIZE), total: found.length, pages: Math.max(1, Math.ceil(found.length / PAGE_SIZE)) };
}
