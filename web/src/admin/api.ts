// The admin API client. The session lives in an HttpOnly cookie the browser sends by
// itself; the CSRF token the sign-in answer gives is held here, in memory only, and
// sent as X-CSRF-Token on every state-changing call. The master key is sent once, in
// the sign-in body, and never kept.
import type {
  Budget,
  Bucket,
  CreatedKey,
  Health,
  KeyPage,
  KeySettings,
  KeyView,
  RequestPage,
  Session,
  Team,
  TopBy,
  TopRow,
  UsageFigures,
  UsageFilters,
  UsageRecord,
  UsageSeries,
  User,
} from "./types";

const BASE = "/admin/api";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

let csrf: string | null = null;
let onSignedOut: () => void = () => undefined;

/** Called when any call answers 401: the session is gone (expired, or signed out elsewhere). */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

async function errorMessage(response: Response): Promise<string> {
  try {
    const body = await response.json();
    if (body?.error?.message) return String(body.error.message);
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** A query's parameters; a list repeats its parameter (``id=a&id=b``). */
type Query = Record<string, string | number | string[] | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") params.append(name, String(one));
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers = new Headers({ Accept: "application/json" });
  if (body !== undefined) headers.set("Content-Type", "application/json");
  if (method !== "GET" && csrf) headers.set("X-CSRF-Token", csrf);
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 401 && path !== `${BASE}/session`) {
    csrf = null;
    onSignedOut();
  }
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

const get = <T>(path: string, query?: Query) => call<T>("GET", withQuery(path, query));
const id = encodeURIComponent;

export const session = {
  /** The current session (from the cookie), or null when there is none. */
  async current(): Promise<Session | null> {
    try {
      const found = await call<Session>("GET", `${BASE}/session`);
      csrf = found.csrf;
      return found;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    }
  },
  async signIn(credentials: { master_key: string } | { email: string; password: string }) {
    const started = await call<Session>("POST", `${BASE}/session`, credentials);
    csrf = started.csrf;
    return started;
  },
  async signOut(): Promise<void> {
    try {
      await call<void>("DELETE", `${BASE}/session`);
    } finally {
      csrf = null;
    }
  },
};

export interface KeyQuery {
  q?: string;
  /** Only the keys with these ids (at most 200). */
  id?: string[];
  status?: string;
  sort?: string;
  order?: "asc" | "desc";
  limit?: number;
  offset?: number;
}

export const keys = {
  list: (query: KeyQuery) => get<KeyPage>(`${BASE}/keys`, { ...query }),
  get: (keyId: string) => get<KeyView>(`${BASE}/keys/${id(keyId)}`),
  create: (settings: KeySettings) => call<CreatedKey>("POST", `${BASE}/keys`, settings),
  update: (keyId: string, settings: KeySettings) =>
    call<KeyView>("PATCH", `${BASE}/keys/${id(keyId)}`, settings),
  revoke: (keyId: string) => call<unknown>("DELETE", `${BASE}/keys/${id(keyId)}`),
};

export const teams = {
  list: async () => (await get<{ teams: Team[] }>(`${BASE}/teams`)).teams,
  get: (name: string) => get<Team>(`${BASE}/teams/${id(name)}`),
  create: (team: { name: string; budget_usd?: number | null; budget_period?: string }) =>
    call<Team>("POST", `${BASE}/teams`, team),
  update: (name: string, change: { budget_usd?: number | null; budget_period?: string }) =>
    call<Team>("PATCH", `${BASE}/teams/${id(name)}`, change),
  remove: (name: string) => call<void>("DELETE", `${BASE}/teams/${id(name)}`),
  addMember: (name: string, email: string) =>
    call<unknown>("POST", `${BASE}/teams/${id(name)}/members`, { email }),
  removeMember: (name: string, userId: string) =>
    call<void>("DELETE", `${BASE}/teams/${id(name)}/members/${id(userId)}`),
};

export const users = {
  list: async () => (await get<{ users: User[] }>(`${BASE}/users`)).users,
  create: (user: { email: string; password: string; is_admin: boolean }) =>
    call<User>("POST", `${BASE}/users`, user),
  update: (userId: string, change: { is_admin?: boolean; password?: string }) =>
    call<User>("PATCH", `${BASE}/users/${id(userId)}`, change),
  remove: (userId: string) => call<void>("DELETE", `${BASE}/users/${id(userId)}`),
};

export const usage = {
  series: (bucket: Bucket, filters: UsageFilters) =>
    get<UsageSeries>(`${BASE}/usage/series`, { bucket, ...filters }),
  totals: (filters: UsageFilters) => get<UsageFigures>(`${BASE}/usage/totals`, { ...filters }),
  top: async (by: TopBy, limit: number, filters: UsageFilters) =>
    (await get<{ rows: TopRow[] }>(`${BASE}/usage/top`, { by, limit, ...filters })).rows,
  budgets: async () => (await get<{ budgets: Budget[] }>(`${BASE}/usage/budgets`)).budgets,
  /** Team names to filter by: made here, or named by keys or usage; ``q`` narrows them. */
  teams: async (q: string, limit: number) =>
    (await get<{ teams: string[] }>(`${BASE}/usage/teams`, { q, limit })).teams,
};

export interface RequestQuery {
  key_id?: string;
  model?: string;
  provider?: string;
  status?: string;
  error_type?: string;
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string | null;
}

export const requests = {
  list: (query: RequestQuery) => get<RequestPage>(`${BASE}/requests`, { ...query }),
  get: (recordId: string) => get<UsageRecord>(`${BASE}/requests/${id(recordId)}`),
};

/** The gateway's health (public, outside /admin/api). */
export async function health(): Promise<Health> {
  const response = await fetch("/health", { cache: "no-store" });
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  return (await response.json()) as Health;
}
