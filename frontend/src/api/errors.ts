/** What an HTTP error means to the person using the app: one plain sentence per status. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly retryAfter: string | null = null,
    /** The whole error body (e.g. a 422's `errors` list naming each wrong field). */
    readonly body: unknown = null,
  ) {
    super(messageFor(status, detail, retryAfter));
    this.name = "ApiError";
  }
}

/** A clear message for an API error status and the server's `detail`. */
export function messageFor(status: number, detail: string, retryAfter: string | null = null): string {
  const why = detail ? `: ${detail}` : "";
  switch (status) {
    case 401:
      return `Your session has ended; please sign in again${why}`;
    case 403:
      return `Your role does not allow this${why}`;
    case 404:
      return `Not found (or not shared with you)${why}`;
    case 409:
      return `Someone changed this first${why}. The page now shows the current state.`;
    case 413:
      return `Too large${why}`;
    case 422:
      return `Please check the input${why}`;
    case 429:
      return `Too many requests; try again${retryAfter ? ` in ${retryAfter} s` : " shortly"}${why}`;
    case 503:
    case 504:
      return `The service is busy or unreachable; try again${why}`;
    default:
      return status >= 500 ? `The server failed (${status})${why}` : `Request failed (${status})${why}`;
  }
}

/** The `detail` string of an error body (FastAPI's shape), whatever came back. */
export function detailOf(body: unknown): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }
  return typeof body === "string" ? body : "";
}
