/**
 * An HTTP client for the awaithumans task API (`fetch`, no dependency), the TypeScript
 * twin of `awaithumans/core/_client.py`: the same routes, the same bearer credential, and
 * the same idea of a transient failure. A refused or dropped connection, 429, and any 5xx
 * are tried again with capped exponential backoff and full jitter until a caller-given
 * deadline, because a server restarting under a waiting agent is normal; a `Retry-After`
 * the server sends (a 503 while it drains, a 429) is honoured as the least pause.
 */
import { ErrorCode } from "./codes.js";
import {
  type ApiError,
  AuthenticationError,
  type FieldError,
  IdempotencyConflictError,
  InvalidRequestError,
  PermissionDeniedError,
  SchemaValidationError,
  ServerUnreachableError,
  TaskNotFoundError,
} from "./errors.js";
import {
  type CreateTaskRequest,
  type JsonObject,
  MAX_POLL_SECONDS,
  type PollResponse,
  type TaskView,
} from "./wire.js";

const BACKOFF_BASE_MS = 100;
// The longest pause while the server has been away for under a minute (a restart): waiters
// see it back within about half a second. Past a minute it is an outage, and 5 s will do.
const BACKOFF_CAP_MS = 500;
const LONG_OUTAGE_MS = 60_000;
const LONG_OUTAGE_CAP_MS = 5_000;
// A Retry-After longer than this is not worth obeying to the letter.
const RETRY_AFTER_CAP_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Full-jitter exponential backoff in milliseconds (`awayMs`: time since the first failure). */
export function backoffDelayMs(attempt: number, awayMs = 0): number {
  const cap = awayMs < LONG_OUTAGE_MS ? BACKOFF_CAP_MS : LONG_OUTAGE_CAP_MS;
  return Math.random() * Math.min(cap, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 32));
}

/** A failure worth trying again; `retryAfterMs` is the server's least pause, if it named one. */
class Transient extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface TaskClientOptions {
  apiKey?: string | undefined;
  userAgent?: string;
  /** Aborts every request and pause of this client (the caller's `signal`). */
  signal?: AbortSignal | undefined;
}

/** Talks to one awaithumans server with one credential. */
export class TaskClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly signal: AbortSignal | undefined;

  constructor(baseUrl: string, options: TaskClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = {
      "user-agent": options.userAgent ?? "awaithumans-typescript",
      accept: "application/json",
    };
    if (options.apiKey) this.headers.authorization = `Bearer ${options.apiKey}`;
    this.signal = options.signal;
  }

  /** Create (or find again, by idempotency key) a task: the task and whether it was replayed. */
  async createTask(
    body: CreateTaskRequest,
    deadline: number,
  ): Promise<{ view: TaskView; replayed: boolean }> {
    return this.retrying(deadline, async () => {
      const resp = await this.request("POST", "/api/tasks", body);
      if (resp.status === 200 || resp.status === 201) {
        const replayed = (resp.headers.get("idempotent-replayed") ?? "").toLowerCase() === "true";
        return { view: (await resp.json()) as TaskView, replayed };
      }
      if (resp.status === 409) {
        throw new IdempotencyConflictError(body.idempotency_key, (await errorFields(resp)).message);
      }
      throw await errorFor(resp);
    });
  }

  /** Long-poll a task: returns as soon as it changes, or after `waitSeconds`. */
  async poll(taskId: string, waitSeconds: number, deadline: number): Promise<PollResponse> {
    const wait = Math.max(1, Math.min(MAX_POLL_SECONDS, Math.floor(waitSeconds)));
    return this.retrying(deadline, async () => {
      const resp = await this.request(
        "GET",
        `/api/tasks/${encodeURIComponent(taskId)}/poll?timeout=${wait}`,
      );
      if (resp.status === 200) return (await resp.json()) as PollResponse;
      if (resp.status === 404) throw new TaskNotFoundError(taskId);
      throw await errorFor(resp);
    });
  }

  async getTask(taskId: string, deadline: number = Date.now() + 30_000): Promise<TaskView> {
    return this.retrying(deadline, async () => {
      const resp = await this.request("GET", `/api/tasks/${encodeURIComponent(taskId)}`);
      if (resp.status === 200) return (await resp.json()) as TaskView;
      if (resp.status === 404) throw new TaskNotFoundError(taskId);
      throw await errorFor(resp);
    });
  }

  /** Submit a human's answer (needs an operator's or the assignee's credential). */
  async completeTask(taskId: string, response: JsonObject): Promise<TaskView> {
    return this.once(`/api/tasks/${encodeURIComponent(taskId)}/complete`, taskId, { response });
  }

  async cancelTask(taskId: string, reason?: string): Promise<TaskView> {
    return this.once(`/api/tasks/${encodeURIComponent(taskId)}/cancel`, taskId, {
      reason: reason ?? null,
    });
  }

  // -- plumbing ---------------------------------------------------------------------------

  private async once(path: string, taskId: string, body: unknown): Promise<TaskView> {
    const resp = await this.request("POST", path, body);
    if (resp.status === 200) return (await resp.json()) as TaskView;
    if (resp.status === 404) throw new TaskNotFoundError(taskId);
    const err = await errorFor(resp);
    if (err instanceof Transient) throw new ServerUnreachableError(this.baseUrl, err.message);
    throw err;
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    // Reads may take the whole long-poll window; connecting and the rest may not.
    const limit = path.includes("/poll?") ? (MAX_POLL_SECONDS + 15) * 1000 : CONNECT_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(limit);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    const headers = { ...this.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (this.signal?.aborted) throw this.signal.reason;
      // fetch rejects with a TypeError for a refused or dropped connection, and with the
      // timeout's error when the server does not answer in time: both are transient.
      throw new Transient(describe(err));
    }
  }

  private async retrying<T>(deadline: number, once: () => Promise<T>): Promise<T> {
    let attempt = 0;
    let firstFailure: number | undefined;
    for (;;) {
      let pauseAtLeast = 0;
      let detail: string;
      try {
        return await once();
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        detail = err.message;
        pauseAtLeast = Math.min(err.retryAfterMs ?? 0, RETRY_AFTER_CAP_MS);
      }
      const now = Date.now();
      firstFailure ??= now;
      const remaining = deadline - now;
      if (remaining <= 0) throw new ServerUnreachableError(this.baseUrl, detail);
      const pause = Math.max(pauseAtLeast, backoffDelayMs(attempt, now - firstFailure));
      await sleep(Math.min(pause, remaining), this.signal);
      attempt += 1;
    }
  }
}

/** Sleep `ms`, or throw the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const FORBIDDEN_HINTS: Record<string, string> = {
  [ErrorCode.NOT_ASSIGNED_TO_YOU]:
    "The task is assigned to someone else: answer as them or as an operator, or have an operator reassign it.",
  [ErrorCode.FORBIDDEN]:
    "This credential may not do it: agent keys create and read tasks; answering needs an operator's or the assignee's credential.",
};

async function errorFor(resp: Response): Promise<ApiError | SchemaValidationError | Transient> {
  const status = resp.status;
  if (status === 429 || status >= 500) {
    await resp.body?.cancel();
    return new Transient(`HTTP ${status}`, retryAfterMs(resp.headers.get("retry-after")));
  }
  const { code, message, details } = await errorFields(resp);
  if (status === 401) {
    return new AuthenticationError(message, {
      code,
      statusCode: status,
      hint: "Set AWAITHUMANS_API_KEY (an agent key from `awaithumans create-agent-key`) or run against `awaithumans dev`, whose token the SDK finds by itself.",
    });
  }
  if (status === 403) {
    return new PermissionDeniedError(message, {
      code,
      statusCode: status,
      hint: FORBIDDEN_HINTS[code ?? ""],
    });
  }
  if (code === ErrorCode.SCHEMA_VALIDATION_FAILED) {
    return new SchemaValidationError("request", message, details as unknown as FieldError[]);
  }
  return new InvalidRequestError(message, { code, statusCode: status, details });
}

async function errorFields(
  resp: Response,
): Promise<{ code: string | undefined; message: string; details: Record<string, unknown>[] }> {
  const text = await resp.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { code: undefined, message: `HTTP ${resp.status}: ${text.slice(0, 200)}`, details: [] };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { code: undefined, message: `HTTP ${resp.status}`, details: [] };
  }
  const record = body as Record<string, unknown>;
  return {
    code: typeof record.error === "string" ? record.error : undefined,
    message: String(record.message || `HTTP ${resp.status}`),
    details: Array.isArray(record.details) ? (record.details as Record<string, unknown>[]) : [],
  };
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined if neither. */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const why = cause instanceof Error ? `: ${cause.message}` : "";
    return `${err.name}: ${err.message}${why}`;
  }
  return String(err);
}
