import { Link, useSearchParams } from "react-router-dom";
import { useRunsPage } from "../api/queries";
import { useAuth } from "../auth";
import { Button, Empty, ErrorMessage, Loading, StatusBadge, Pager } from "../components/ui";
import { filtersToParams, pageCount, parseFilters, STATUSES, type RunFilters } from "../lib/filters";
import { formatTime, gateLabel, runState } from "../lib/format";
import { mayStartRuns } from "../lib/roles";
import { useNavigate } from "react-router-dom";

const LABELS: Record<string, string> = {
  all: "All",
  running: "Running",
  waiting: "Waiting for a decision",
  completed: "Completed",
  completed_with_findings: "Completed with open findings",
  failed: "Failed",
  aborted: "Aborted",
};

export function RunsPage() {
  const [params, setParams] = useSearchParams();
  const filters = parseFilters(params);
  const runs = useRunsPage(filters);
  const { me } = useAuth();
  const navigate = useNavigate();
  const set = (change: Partial<RunFilters>) => setParams(filtersToParams({ ...filters, page: 1, ...change }));
  const total = runs.data?.total ?? 0;
  const shown = { rows: runs.data?.rows ?? [], total, pages: pageCount(total) };

  return (
    <section>
      <div className="row spread">
        <h1>Runs</h1>
        <Button variant="primary" verdict={mayStartRuns(me)} onClick={() => navigate("/new")}>
          Start a run
        </Button>
      </div>
      <div className="row filters" role="group" aria-label="Filter runs">
        {STATUSES.map((s) => (
          <button key={s} type="button" className={`chip ${filters.status === s ? "on" : ""}`} aria-pressed={filters.status === s} onClick={() => set({ status: s })}>
            {LABELS[s]}
          </button>
        ))}
        <label htmlFor="search" className="sr-only">
          Search runs
        </label>
        <input id="search" type="search" placeholder="Search by name, id or who started it" value={filters.q} onChange={(e) => set({ q: e.target.value })} />
      </div>
      <ErrorMessage error={runs.error} />
      {runs.isPending ? (
        <Loading what="runs" />
      ) : shown.total === 0 ? (
        <Empty>No runs match. {mayStartRuns(me).allowed ? "Start one with an upload." : ""}</Empty>
      ) : (
        <>
          <table className="nowrap">
            <caption className="sr-only">Runs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Gate</th>
                <th scope="col">Started by</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {shown.rows.map((run) => (
                <tr key={run.id}>
                  <td>
                    <Link to={`/runs/${run.id}`}>{run.name}</Link>
                  </td>
                  <td>
                    <StatusBadge state={runState(run)} />
                  </td>
                  <td>{gateLabel(run.open_gate)}</td>
                  <td>{run.requested_by}</td>
                  <td>{formatTime(run.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager page={filters.page} pages={shown.pages} total={shown.total} noun="run" go={(page) => set({ page })} />
        </>
      )}
    </section>
  );
}
