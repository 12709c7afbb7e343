/** The signed-in session: tokens, silent refresh before expiry, and one retry of a request after a 401. */

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

type Listener = (signedIn: boolean) => void;
const REFRESH_KEY = "lockflow.refresh";
// Refresh this many seconds before the access token lapses, so no request meets an expired one.
const EARLY_SECONDS = 30;

let access: string | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | null = null;
const listeners = new Set<Listener>();

export function accessToken(): string | null {
  return access;
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** How many milliseconds from now to refresh a token valid for `expiresIn` seconds (a short-lived one
at half its life). */
export function refreshDelay(expiresIn: number): number {
  return Math.max(5, expiresIn > 2 * EARLY_SECONDS ? expiresIn - EARLY_SECONDS : expiresIn / 2) * 1000;
}

export function store(tokens: Tokens): void {
  access = tokens.access_token;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  clearTimeout(timer);
  timer = setTimeout(() => void refresh(), refreshDelay(tokens.expires_in));
  listeners.forEach((l) => l(true));
}

export function clear(): void {
  access = null;
  clearTimeout(timer);
  sessionStorage.removeItem(REFRESH_KEY);
  listeners.forEach((l) => l(false));
}

/** Trade the refresh token for new tokens (one at a time); false when the session is over. */
export function refresh(): Promise<boolean> {
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) return Promise.resolve(false);
  refreshing ??= fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: token }),
  })
    .then(async (answer) => {
      if (!answer.ok) {
        clear();
        return false;
      }
      store((await answer.json()) as Tokens);
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}
