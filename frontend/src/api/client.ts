/** The typed API client (generated from the gateway's OpenAPI: `make client`), with the session's token. */
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { ApiError, detailOf } from "./errors";
import { accessToken, refresh } from "./session";

const withToken: Middleware = {
  onRequest({ request }) {
    const token = accessToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  async onResponse({ request, response }) {
    // One silent refresh and retry when the access token lapsed between two scheduled refreshes.
    if (response.status !== 401 || request.url.includes("/auth/")) return response;
    if (!(await refresh())) return response;
    const again = request.clone();
    again.headers.set("Authorization", `Bearer ${accessToken() ?? ""}`);
    return fetch(again);
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(withToken);

/** The data of an openapi-fetch answer, or an ApiError with a clear message. */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    throw new ApiError(response.status, detailOf(error), response.headers.get("Retry-After"), error);
  }
  return data as T;
}

/** The X-Total-Count of a list answer with its rows. */
export async function page<T>(
  call: Promise<{ data?: T[]; error?: unknown; response: Response }>,
): Promise<{ rows: T[]; total: number }> {
  const answer = await call;
  const rows = await ok(Promise.resolve(answer));
  return { rows, total: Number(answer.response.headers.get("X-Total-Count") ?? rows.length) };
}

/** A request outside the generated paths (a route another part adds later, e.g. charts): JSON or ApiError. */
export async function raw<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const token = accessToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let answer = await fetch(path, { ...init, headers });
  if (answer.status === 401 && (await refresh())) {
    headers.set("Authorization", `Bearer ${accessToken() ?? ""}`);
    answer = await fetch(path, { ...init, headers });
  }
  const text = await answer.text();
  const body: unknown = text ? safeJson(text) : null;
  if (!answer.ok) throw new ApiError(answer.status, detailOf(body), answer.headers.get("Retry-After"), body);
  return body as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
