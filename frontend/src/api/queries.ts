/** The server state the pages share (TanStack Query): runs, a run, decision requests, the inbox. */
import { useQuery } from "@tanstack/react-query";
import { api, ok, page } from "./client";
import { runsQuery, type RunFilters } from "../lib/filters";

export interface RunRow {
  id: string;
  name: string;
  status: string;
  current_step: string | null;
  open_gate: string | null;
  decided_gate: string | null;
  requested_by: string;
  error: string | null;
  created_at: string;
  updated_at: string;
}

export interface Attempt {
  id: string;
  step: string;
  status: string;
  error: string | null;
  dispatches: number;
  requested_at: string | null;
  finished_at: string | null;
}

export interface PastDecision {
  request_id: string;
  gate: string;
  option: string;
  params: Record<string, unknown>;
  decided_by: string;
  rationale: string;
  decided_at: string;
}

export interface RunDetail extends RunRow {
  results: Record<string, unknown>;
  attempts: Attempt[];
  decisions: PastDecision[];
}

export interface GateOption {
  name: string;
  description: string;
  params_schema: Record<string, unknown> | null;
}

export interface DecisionRequest {
  id: string;
  run_id: string;
  gate: string;
  title: string;
  status: string;
  options: GateOption[];
  context: Record<string, unknown>;
  created_at: string;
  decided_at: string | null;
  /** When an open gate becomes overdue (the orchestrator alerts then); null once decided. */
  deadline_at?: string | null;
}

// The whole visible list in one page: filters and search then work over every run the caller may see.
export const LIST_LIMIT = 1000;

export function useRuns() {
  return useQuery({
    queryKey: ["runs"],
    queryFn: async () => {
      const found = await page(api.GET("/runs", { params: { query: { limit: LIST_LIMIT } } }));
      return { rows: found.rows as unknown as RunRow[], total: found.total };
    },
    refetchInterval: 5_000,
  });
}

/** One page of the runs list, filtered by state and search on the server (the URL's filters). */
export function useRunsPage(filters: RunFilters) {
  const query = runsQuery(filters);
  return useQuery({
    queryKey: ["runs", "page", query],
    queryFn: async () => {
      const found = await page(api.GET("/runs", { params: { query } }));
      return { rows: found.rows as unknown as RunRow[], total: found.total };
    },
    placeholderData: (previous) => previous,
    refetchInterval: 5_000,
  });
}

export function useRun(runId: string) {
  return useQuery({
    queryKey: ["run", runId],
    queryFn: async () => (await ok(api.GET("/runs/{run_id}", { params: { path: { run_id: runId } } }))) as unknown as RunDetail,
  });
}

export function useOpenRequests(runId?: string) {
  return useQuery({
    queryKey: ["decisions", "open", runId ?? "all"],
    queryFn: async () => {
      const query = runId ? { status: "open" as const, run_id: runId, limit: LIST_LIMIT } : { status: "open" as const, limit: LIST_LIMIT };
      const found = await page(api.GET("/decisions", { params: { query } }));
      return { rows: found.rows as unknown as DecisionRequest[], total: found.total };
    },
    // The inbox badge polls: a gate opened on someone else's run shows without a reload.
    refetchInterval: runId ? 10_000 : 3_000,
  });
}

export function useRequest(requestId: string | undefined) {
  return useQuery({
    queryKey: ["decision", requestId],
    enabled: !!requestId,
    queryFn: async () =>
      (await ok(api.GET("/decisions/{request_id}", { params: { path: { request_id: requestId ?? "" } } }))) as unknown as DecisionRequest,
  });
}
