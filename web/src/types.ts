// Shapes of the chat API (see docs/chat.md); the server is the source of truth.

export interface ChatSession {
  id: string;
  owner: string | null;
  title: string;
  model: string | null;
  system: string | null;
  temperature: number | null;
  max_tokens: number | null;
  created_at: number;
  updated_at: number;
}

export interface ChatMessage {
  id: string;
  session_id: string;
  role: "user" | "assistant";
  content: string;
  model: string | null;
  provider: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  usage_accurate: boolean | null;
  error: string | null;
  /** The HTTP status a failed reply failed with (429: rate limited). */
  error_status: number | null;
  created_at: number;
}

export type SessionSettings = Partial<
  Pick<ChatSession, "title" | "model" | "system" | "temperature" | "max_tokens">
>;

export interface TokenCounts {
  prompt: number;
  completion: number;
  total: number;
}

export type ChatEvent =
  | { type: "accepted"; question_id: string | null; reply_id: string }
  | { type: "provider"; provider: string; model: string }
  | { type: "delta"; text: string }
  | { type: "usage"; tokens: TokenCounts; accurate: boolean }
  | { type: "error"; message: string; status: number }
  | { type: "rate_limited"; message: string; retry_after: number | null }
  | { type: "done"; message_id: string | null };

export interface Connection {
  provider: string;
  base_url: string | null;
  has_key: boolean;
  /** Why its models could not be listed the last time they were asked for, if so. */
  models_error: string | null;
}

export interface ConnectionList {
  connections: Connection[];
  providers: string[];
}

export interface ModelEntry {
  id: string;
  owned_by: string;
}
