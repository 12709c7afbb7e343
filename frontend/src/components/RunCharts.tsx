/** The charts of a run's stage from GET /runs/{id}/charts (the charts service's Vega-Lite specs).

While that route is absent (404) or has no chart for the stage, nothing is shown: no error.
*/
import { lazy, Suspense } from "react";
import { useQuery } from "@tanstack/react-query";
import { raw } from "../api/client";
import { ApiError } from "../api/errors";
import type { ChartItem } from "./VegaChart";

const VegaChart = lazy(() => import("./VegaChart"));

interface Charts {
  items: ChartItem[];
  total: number;
}

export function useCharts(runId: string) {
  return useQuery({
    queryKey: ["charts", runId],
    queryFn: async () => {
      try {
        return await raw<Charts>(`/runs/${encodeURIComponent(runId)}/charts`);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return { items: [], total: 0 };
        throw error;
      }
    },
    retry: false,
  });
}

export function RunCharts({ runId, stage, match }: { runId: string; stage: string; match?: (c: ChartItem) => boolean }) {
  const charts = useCharts(runId);
  const items = (charts.data?.items ?? []).filter((c) => c.stage === stage && (!match || match(c)));
  return <ChartGrid items={items} label="Charts" />;
}

/** Chart items drawn side by side (nothing when there are none), e.g. a gate-2 preview's before/after. */
export function ChartGrid({ items, label }: { items: ChartItem[]; label: string }) {
  if (!items.length) return null;
  return (
    <section aria-label={label} className="charts">
      <Suspense fallback={<p className="muted">Drawing charts…</p>}>
        {items.map((chart) => (
          <VegaChart key={chart.id} chart={chart} />
        ))}
      </Suspense>
    </section>
  );
}
