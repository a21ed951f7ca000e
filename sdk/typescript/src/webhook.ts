/**
 * Checking the server's signed webhooks in a Node receiver.
 *
 * The server posts an event to a task's `callbackUrl` when the task ends, signed as
 * Standard Webhooks specifies (`awaithumans/server/engines/webhook.py`): the headers
 * `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`, several space-separated while the server's key rotates), keyed by
 * the base64 secret after `whsec_` (`awaithumans webhook-secret` prints it).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { z } from "zod";
import { parseOrThrow } from "./await.js";
import { InvalidSignatureError, NotOurEventError } from "./errors.js";
import type { ApprovalView, JsonObject, TaskStatus } from "./wire.js";

/** How far a timestamp may be from now, either way, before the event is refused (replays). */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** The `data` of a task event, as the server sends it. */
export interface WebhookTaskData<Response = JsonObject> {
  task_id: string;
  idempotency_key: string;
  status: TaskStatus;
  response: Response | null;
  default_applied: boolean;
  completed_at: string | null;
  timed_out_at: string | null;
  verification_attempt: number;
  completed_by_email: string | null;
  completed_via_channel: string | null;
  task_metadata: JsonObject | null;
  receipt: JsonObject | null;
  approvals: ApprovalView[];
}

/** A verified event: `type` is `task.<status>` (`task.completed`, `task.timed_out`, ...). */
export interface WebhookEvent<Response = JsonObject> {
  type: string;
  timestamp: string;
  data: WebhookTaskData<Response>;
}

/** Headers as a `Headers` object (fetch, Hono, Next.js) or a plain record (node:http, Express). */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions<R extends z.ZodType | undefined> {
  /** Parse `data.response` with this schema (a completed or defaulted event). */
  responseSchema?: R;
  toleranceSeconds?: number;
  /** The current time in seconds (tests). */
  now?: number;
}

/**
 * Check a webhook's signature and return its event.
 *
 * @param body The raw request body, exactly as received (a string or bytes): a body parsed
 *   and serialised again no longer matches its signature.
 * @throws InvalidSignatureError A header is missing, the timestamp is too old or too new,
 *   or no signature was made with `secret`.
 * @throws NotOurEventError Signed, but not a task event (`type` and a `data` object).
 * @throws SchemaValidationError `responseSchema` is given and the response does not fit.
 */
export function verifyWebhook<R extends z.ZodType | undefined = undefined>(
  body: string | Uint8Array,
  headers: HeaderSource,
  secret: string,
  options: VerifyOptions<R> = {},
): WebhookEvent<R extends z.ZodType ? z.output<R> : JsonObject> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new InvalidSignatureError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  if (!/^\d+$/.test(timestamp))
    throw new InvalidSignatureError("webhook-timestamp is not a number");
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new InvalidSignatureError("webhook-timestamp is outside the tolerance (a replay?)");
  }
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const expected = Buffer.from(signature(secret, id, timestamp, raw), "base64");
  const matched = signatures.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched) throw new InvalidSignatureError("no signature matches the secret");

  let event: unknown;
  try {
    event = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new NotOurEventError("the signed body is not JSON");
  }
  const record = event as Record<string, unknown> | null;
  const data = record?.data as Record<string, unknown> | undefined;
  if (
    typeof record !== "object" ||
    record === null ||
    typeof record.type !== "string" ||
    typeof data !== "object" ||
    data === null ||
    typeof data.task_id !== "string"
  ) {
    throw new NotOurEventError("expected a task event: {type, data: {task_id, ...}}");
  }
  if (options.responseSchema !== undefined && data.response != null) {
    data.response = parseOrThrow(options.responseSchema, data.response, "response");
  }
  return event as WebhookEvent<R extends z.ZodType ? z.output<R> : JsonObject>;
}

/**
 * The `webhook-signature` header value for a body, as the server makes it (`v1,<base64>`).
 * For tests of a receiver, and for forwarding an event onward with a secret of your own.
 */
export function signWebhook(
  secret: string,
  id: string,
  timestamp: number | string,
  body: string | Uint8Array,
): string {
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  return `v1,${signature(secret, id, String(timestamp), raw)}`;
}

function signature(secret: string, id: string, timestamp: string, body: Buffer): string {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  if (key.length === 0) throw new InvalidSignatureError("the webhook secret is empty");
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}
