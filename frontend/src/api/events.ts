/** Following a Server-Sent Events route: the token in the URL, a refresh and a reconnect when it drops. */
import { refresh } from "./session";

const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 30_000;

/** How long to wait before reconnecting after `failures` failed attempts in a row: 1 s, doubling to 30 s. */
export function retryDelay(failures: number): number {
  return Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failures));
}

/** Follow `url()` (asked again at each connect, so it carries the current token and position).

`listen` adds the route's own listeners to each new EventSource. On `error` (a lapsed token or a dropped
connection) the session is refreshed and the stream reopened, backing off while it keeps failing (an outage
is not met with a refresh every second). Returns the function that stops following. */
export function followEvents(url: () => string, listen: (source: EventSource) => void): () => void {
  let source: EventSource | null = null;
  let stopped = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connect = () => {
    if (stopped) return;
    const current = new EventSource(url());
    source = current;
    listen(current);
    current.addEventListener("open", () => {
      failures = 0;
    });
    current.addEventListener("error", () => {
      current.close();
      if (stopped) return;
      timer = setTimeout(() => void refresh().finally(connect), retryDelay(failures));
      failures += 1;
    });
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
  };
}
