/** The app's frame (header with the live inbox badge, theme, user) and its routes (all under /ui/). */
import { Link, NavLink, Navigate, Route, Routes, useLocation } from "react-router-dom";
import { useAuth } from "./auth";
import { useTheme } from "./theme";
import { useOpenRequests, useRuns } from "./api/queries";
import { isAdmin, mayDecide } from "./lib/roles";
import { LoginPage } from "./pages/Login";
import { RunsPage } from "./pages/Runs";
import { NewRunPage } from "./pages/NewRun";
import { RunPage } from "./pages/RunView";
import { InboxPage } from "./pages/Inbox";
import { ReportPage } from "./pages/Report";
import { AuditPage } from "./pages/Audit";
import { AdminPage } from "./pages/Admin";
import { MonitoringPage } from "./pages/Monitoring";
import { NewSourcePage, SourcePage, SourcesPage } from "./pages/Sources";
import { StreamPage, StreamsPage } from "./pages/Streams";
import { Loading } from "./components/ui";

/** How many open gates the signed-in user may decide (the inbox's count). */
export function useInboxCount(): number {
  const { me } = useAuth();
  const open = useOpenRequests();
  const runs = useRuns();
  const owners = new Map((runs.data?.rows ?? []).map((r) => [r.id, r.requested_by]));
  return (open.data?.rows ?? []).filter((r) => mayDecide(me, r.gate, owners.get(r.run_id) ?? "").allowed).length;
}

function Header() {
  const { me, signOut } = useAuth();
  const { theme, toggle } = useTheme();
  const count = useInboxCount();
  return (
    <header className="header">
      <Link to="/" className="brand">
        lockflow
      </Link>
      <nav aria-label="Main">
        <NavLink to="/" end>
          Runs
        </NavLink>
        <NavLink to="/inbox">
          Inbox{" "}
          <span className="count" aria-label={`${count} decisions waiting for you`} data-testid="inbox-count">
            {count}
          </span>
        </NavLink>
        <NavLink to="/sources">Sources</NavLink>
        <NavLink to="/streams">Streams</NavLink>
        <NavLink to="/monitoring">Monitoring</NavLink>
        <NavLink to="/admin" end>
          Admin
        </NavLink>
        {isAdmin(me) && <NavLink to="/admin/audit">Audit</NavLink>}
      </nav>
      <div className="row">
        <button type="button" className="btn btn-secondary" onClick={toggle} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? "Light" : "Dark"} theme
        </button>
        <span className="muted" data-testid="whoami">
          {me?.username} ({me?.roles.join(", ")})
        </span>
        <button type="button" className="btn btn-secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}

export function App() {
  const { me, ready } = useAuth();
  const location = useLocation();
  if (!ready) return <Loading what="your session" />;
  if (!me) {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<Navigate to="/login" replace state={{ from: location.pathname + location.search }} />} />
      </Routes>
    );
  }
  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <Header />
      <main id="main">
        <Routes>
          <Route path="/" element={<RunsPage />} />
          <Route path="/new" element={<NewRunPage />} />
          <Route path="/runs/:runId" element={<RunPage />} />
          <Route path="/runs/:runId/report" element={<ReportPage />} />
          <Route path="/inbox" element={<InboxPage />} />
          <Route path="/sources" element={<SourcesPage />} />
          <Route path="/sources/new" element={<NewSourcePage />} />
          <Route path="/sources/:ref" element={<SourcePage />} />
          <Route path="/streams" element={<StreamsPage />} />
          <Route path="/streams/:streamId" element={<StreamPage />} />
          <Route path="/monitoring" element={<MonitoringPage />} />
          <Route path="/admin" element={<AdminPage />} />
          <Route path="/admin/audit" element={<AuditPage />} />
          <Route path="/login" element={<Navigate to={(location.state as { from?: string } | null)?.from ?? "/"} replace />} />
          <Route path="*" element={<p role="alert">No such page. <Link to="/">Back to the runs</Link></p>} />
        </Routes>
      </main>
    </>
  );
}
