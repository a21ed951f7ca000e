/**
 * The wire protocol, as `awaithumans/core/_wire.py` declares it: the bodies of
 * `POST /api/tasks` and `GET /api/tasks/{id}/poll`, a task as the API returns it, the
 * error body, and the idempotency key the SDKs derive when the caller gives none.
 */
import { createHash } from "node:crypto";

export const MIN_TIMEOUT_SECONDS = 60;
export const MAX_TIMEOUT_SECONDS = 30 * 24 * 3600;
export const MAX_POLL_SECONDS = 30;

export const TaskStatus = {
  CREATED: "created",
  NOTIFIED: "notified",
  ASSIGNED: "assigned",
  IN_PROGRESS: "in_progress",
  SUBMITTED: "submitted",
  REJECTED: "rejected",
  COMPLETED: "completed",
  TIMED_OUT: "timed_out",
  CANCELLED: "cancelled",
  VERIFICATION_EXHAUSTED: "verification_exhausted",
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

const TERMINAL: ReadonlySet<string> = new Set([
  TaskStatus.COMPLETED,
  TaskStatus.TIMED_OUT,
  TaskStatus.CANCELLED,
  TaskStatus.VERIFICATION_EXHAUSTED,
]);

export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Body of `POST /api/tasks` (snake_case, as on the wire; absent fields are left out). */
export interface CreateTaskRequest {
  task: string;
  payload: JsonObject;
  payload_schema: JsonObject;
  response_schema: JsonObject;
  timeout_seconds: number;
  idempotency_key: string;
  form_definition?: JsonObject;
  assign_to?: JsonObject;
  notify?: string[];
  verifier_config?: JsonObject;
  redact_payload?: boolean;
  callback_url?: string;
  task_metadata?: JsonObject;
  initial_response?: JsonObject;
  on_timeout?: JsonObject;
  approvers?: string[];
  operators_may_answer?: boolean;
  approvals_required?: number;
  rejection_policy?: "any_rejects" | "majority";
  reminder_seconds?: number[];
  escalate_after_seconds?: number;
  escalate_to?: string[];
  escalate_reassign?: boolean;
}

/** One approver's vote on a task that needs several approvals. */
export interface ApprovalView {
  user_id: string;
  email?: string | null;
  display_name?: string | null;
  channel: string;
  at: string;
  approved: boolean;
  response?: JsonObject | null;
}

/** Body of `GET /api/tasks/{id}/poll`. */
export interface PollResponse {
  status: TaskStatus;
  response?: JsonObject | null;
  completed_at?: string | null;
  timed_out_at?: string | null;
  verification_attempt?: number;
  default_applied?: boolean;
  receipt?: JsonObject | null;
  approvals_required?: number;
  approvals?: ApprovalView[];
}

/** A task as the API returns it (the fields this SDK reads; the server sends more). */
export interface TaskView {
  id: string;
  review_url?: string | null;
  idempotency_key: string;
  task: string;
  status: TaskStatus;
  payload?: JsonObject | null;
  form_definition?: JsonObject | null;
  timeout_seconds: number;
  timeout_at: string;
  response?: JsonObject | null;
  verification_attempt?: number;
  default_applied?: boolean;
  receipt?: JsonObject | null;
  approvals_required?: number;
  approvals?: ApprovalView[] | null;
  [more: string]: unknown;
}

/** Every error response: `{"error": CODE, "message": ...}` plus optional details. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: Record<string, unknown>[] | null;
}

/**
 * A JSON value as Python's `json.dumps(value, sort_keys=True, separators=(",", ":"))`
 * writes it (ASCII only, as its default `ensure_ascii=True`). Bit-identical for strings,
 * booleans, null, integers and non-integral floats; an integral float (Python's `1.0`)
 * cannot be told from an integer in JavaScript and is written as `1`.
 */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return pythonNumber(value);
  if (typeof value === "string") return pythonString(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => compareCodePoints(a, b));
    return `{${entries.map(([k, v]) => `${pythonString(k)}:${pythonJson(v)}`).join(",")}}`;
  }
  throw new TypeError(`${typeof value} is not JSON`);
}

/**
 * The idempotency key the SDKs derive when the caller gives none: sha256 of the canonical
 * JSON of `{"task", "payload"}`, first 32 hex characters; the same bits as Python's
 * `derive_idempotency_key`, so a Node agent and a Python one asking the same question
 * share the task.
 */
export function deriveIdempotencyKey(task: string, payload: JsonObject): string {
  return createHash("sha256")
    .update(pythonJson({ task, payload }), "utf8")
    .digest("hex")
    .slice(0, 32);
}

// Python sorts keys by code point; JavaScript's default sort compares UTF-16 units, which
// disagrees once a key holds characters beyond U+FFFF next to ones above U+D7FF.
export function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

// ensure_ascii: everything outside space..tilde is a \uXXXX escape of its UTF-16 unit(s).
function pythonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    const unit = text.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (unit >= 0x20 && unit <= 0x7e) out += ch;
    else out += `\\u${unit.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}

/** A number as Python's `json.dumps` writes a float (`repr`); integers as they are. */
export function pythonNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (Number.isSafeInteger(value)) return String(value);
  return pythonFloat(value);
}

/** A number as Python's `repr(float(value))` writes it: `1.0`, `0.5`, `1e-07`, `1e+16`. */
export function pythonFloat(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (Object.is(value, -0)) return "-0.0";
  // float.__repr__: the shortest digits that round-trip (JavaScript finds the same ones),
  // in positional notation for exponents -4..15 and scientific notation outside.
  const [mantissa = "0", exp = "0"] = Math.abs(value).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const e = Number(exp);
  const sign = value < 0 ? "-" : "";
  if (e >= -4 && e < 16) {
    if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
    const whole = digits.slice(0, e + 1).padEnd(e + 1, "0");
    const frac = digits.slice(e + 1) || "0";
    return `${sign}${whole}.${frac}`;
  }
  const rest = digits.slice(1);
  const expText = `${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  return `${sign}${digits[0]}${rest ? `.${rest}` : ""}e${expText}`;
}
