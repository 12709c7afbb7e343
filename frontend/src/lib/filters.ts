/** The runs list's filters as they live in the URL (?status=&q=&page=), typed both ways. */

export const STATUSES = ["all", "running", "waiting", "completed", "completed_with_findings", "failed", "aborted"] as const;
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

/** The GET /runs query for the filters: the server filters by state and search, then pages (with the total). */
export function runsQuery(filters: RunFilters): { status?: Exclude<StatusFilter, "all">; q?: string; limit: number; offset: number } {
  const query: { status?: Exclude<StatusFilter, "all">; q?: string; limit: number; offset: number } = {
    limit: PAGE_SIZE,
    offset: (filters.page - 1) * PAGE_SIZE,
  };
  if (filters.status !== "all") query.status = filters.status;
  const q = filters.q.trim().slice(0, 200);
  if (q) query.q = q;
  return query;
}

/** How many pages a total makes (at least one, so "page 1 of 1" for an empty list). */
export function pageCount(total: number): number {
  return Math.max(1, Math.ceil(total / PAGE_SIZE));
}
