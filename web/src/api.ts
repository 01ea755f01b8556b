// The chat API client: every call carries the gateway key (if one is set), and a 401
// asks the user for a key and tries again.
import type {
  ChatMessage,
  ChatSession,
  ConnectionList,
  ModelEntry,
  SessionSettings,
} from "./types";

const KEY_STORAGE = "modelway.gatewayKey";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Asks the user for a gateway key; resolves false when they give up. */
type KeyPrompt = (reason: string) => Promise<boolean>;
let promptForKey: KeyPrompt = async () => false;

export function setKeyPrompt(prompt: KeyPrompt): void {
  promptForKey = prompt;
}

export function gatewayKey(): string | null {
  return localStorage.getItem(KEY_STORAGE);
}

export function setGatewayKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** A fetch with the gateway key; on 401, one prompt for a key per attempt until given up. */
export async function authorizedFetch(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const headers = new Headers(init.headers);
    const key = gatewayKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    const reason = await errorMessage(response);
    if (!(await promptForKey(reason))) throw new ApiError(reason, 401);
  }
}

/** A 401's reason as a person reads it: the API's "missing API key: send it as
 * 'Authorization: Bearer <key>'..." is for programs, which the page does for them. */
export function keyReason(reason: string): string {
  return /^missing API key\b/i.test(reason.trim()) ? "This gateway asks for a key" : reason.trim();
}

/** Why a call failed, in words for the page: a key that was not given, a gateway that
 * cannot be reached (fetch's own "Failed to fetch"), else the gateway's message. */
export function failureReason(error: unknown): string {
  if (error instanceof ApiError && error.status === 401) {
    return `${keyReason(error.message)}: give it with “Gateway key” in the sidebar`;
  }
  if (error instanceof TypeError) return "The gateway cannot be reached";
  return error instanceof Error ? error.message : String(error);
}

export async function errorMessage(response: Response): Promise<string> {
  try {
    const body = await response.json();
    if (body?.error?.message) return String(body.error.message);
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}

async function call<T>(path: string, method = "GET", body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await authorizedFetch(path, init);
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

const SESSIONS = "/chat/api/sessions";

export const chatApi = {
  listSessions: async () => (await call<{ sessions: ChatSession[] }>(SESSIONS)).sessions,
  createSession: (settings: SessionSettings) => call<ChatSession>(SESSIONS, "POST", settings),
  getSession: (id: string) =>
    call<{ session: ChatSession; messages: ChatMessage[] }>(`${SESSIONS}/${id}`),
  updateSession: (id: string, settings: SessionSettings) =>
    call<ChatSession>(`${SESSIONS}/${id}`, "PATCH", settings),
  deleteSession: (id: string) => call<void>(`${SESSIONS}/${id}`, "DELETE"),
  listModels: async () => (await call<{ data: ModelEntry[] }>("/v1/models")).data,
  listConnections: () => call<ConnectionList>("/chat/api/connections"),
  connect: (provider: string, apiKey: string | null, baseUrl: string | null) =>
    call<unknown>("/chat/api/connections", "POST", {
      provider,
      api_key: apiKey,
      base_url: baseUrl,
    }),
  disconnect: (provider: string) =>
    call<void>(`/chat/api/connections/${encodeURIComponent(provider)}`, "DELETE"),

  /** Opens the reply stream; the caller reads it with ``readEvents``. */
  sendMessage: (
    id: string,
    body: { content: string; model?: string; regenerate?: boolean; after?: string | null },
    signal: AbortSignal,
  ) =>
    authorizedFetch(`${SESSIONS}/${id}/messages`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      signal,
    }),
};
