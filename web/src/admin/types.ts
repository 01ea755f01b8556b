// The shapes of /admin/api/ answers (see the issue 17 contract), and of GET /health.

export type BudgetPeriod = "day" | "month" | "total";
export type KeyStatus = "active" | "revoked" | "expired";

export interface Who {
  kind: "master" | "user";
  email: string | null;
}

export interface Session {
  who: Who;
  csrf: string;
  expires_at: number;
}

export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  owner_user: string | null;
  owner_team: string | null;
  models: string[];
  rpm: number | null;
  tpm: number | null;
  budget_usd: number | null;
  budget_tokens: number | null;
  budget_period: BudgetPeriod;
  expires_at: number | null;
  metadata: Record<string, unknown>;
  created_at: number;
  revoked_at: number | null;
  status: KeyStatus;
  spend_usd?: number;
}

/** The create answer: the key view plus its plaintext, shown once. */
export interface CreatedKey extends KeyView {
  key: string;
}

/** What the create and edit forms send; ``null`` clears a limit on edit. */
export interface KeySettings {
  name?: string;
  models?: string[];
  rpm?: number | null;
  tpm?: number | null;
  budget_usd?: number | null;
  budget_tokens?: number | null;
  budget_period?: BudgetPeriod;
  expires_at?: number | null;
  owner_team?: string | null;
  owner_user?: string | null;
  metadata?: Record<string, unknown>;
}

export interface KeyPage {
  keys: KeyView[];
  total: number;
}

export interface Member {
  id: string;
  email: string;
}

export interface Team {
  name: string;
  budget_usd: number | null;
  budget_period: BudgetPeriod | null;
  created_at: number;
  members: Member[];
  key_count: number;
  spend_usd: number;
}

export interface User {
  id: string;
  email: string;
  is_admin: boolean;
  teams: string[];
  created_at: number;
}

export interface UsageFigures {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  cost_usd: number;
  /** Requests whose model had no price: their cost is unknown, not in cost_usd. */
  unpriced_requests: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

export interface UsagePoint extends UsageFigures {
  t: number;
}

export type Bucket = "hour" | "day";

export interface UsageSeries {
  bucket: Bucket;
  from: number;
  to: number;
  points: UsagePoint[];
}

export type TopBy = "key" | "model" | "team" | "provider" | "alias";

export interface TopRow {
  group: string | null;
  name: string | null;
  requests: number;
  tokens: number;
  cost_usd: number;
  unpriced_requests: number;
}

export interface Budget {
  kind: "key" | "team";
  id: string;
  name: string;
  /** None for a team that owns keys but has no budget: its spend alone is shown. */
  budget_usd: number | null;
  budget_period: BudgetPeriod;
  period_start: number;
  spent_usd: number;
  points: { t: number; spent_usd: number }[];
}

export interface UsageRecord {
  id: string;
  request_id: string;
  time: number;
  key_id: string | null;
  user: string | null;
  team: string | null;
  dialect: string | null;
  alias: string | null;
  provider: string | null;
  model: string | null;
  status: number;
  error_type: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  cache_write_tokens?: number;
  reasoning_tokens?: number;
  usage_estimated: boolean;
  cost_usd: number;
  /** The model had no price: the cost is unknown (cost_usd holds 0). */
  unpriced: boolean;
  latency_ms: number;
  ttft_ms: number | null;
  stream: boolean;
  retries: number;
  fallback_used: string | null;
  cache_hit: boolean;
}

export interface RequestPage {
  requests: UsageRecord[];
  next_cursor: string | null;
}

export interface DeploymentHealth {
  deployment: string;
  state: "healthy" | "cooling" | "probing" | string;
  in_flight: number;
  latency_ms: number | null;
  recent_failures: number;
  cooling_for_seconds: number;
  cooling_because: string | null;
  cooldowns: number;
}

export interface Health {
  status: string;
  version: string;
  uptime_seconds: number;
  providers: string[];
  aliases: string[];
  default_provider: string | null;
  deployments: Record<string, DeploymentHealth[]>;
}

/** The filters the usage endpoints share (all optional). */
export interface UsageFilters {
  key_id?: string;
  team?: string;
  model?: string;
  provider?: string;
  alias?: string;
  from?: string;
  to?: string;
}
