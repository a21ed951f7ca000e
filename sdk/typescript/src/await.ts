/**
 * `awaitHuman`: ask a person, get a typed answer back. The wait protocol of the Python
 * SDK (`awaithumans/core/_await.py`): create the task with an idempotency key (a rerun of
 * the same call finds the same task), long-poll it through restarts and dropped links
 * until it ends, and turn the end into the parsed answer or a typed error.
 */
import type { z } from "zod";
import { markApprovals } from "./approvals.js";
import { TaskClient } from "./client.js";
import { markDefault } from "./defaults.js";
import { resolveServer } from "./discovery.js";
import {
  type FieldError,
  SchemaValidationError,
  ServerUnreachableError,
  TaskCancelledError,
  TaskTimeoutError,
  TimeoutRangeError,
  VerificationExhaustedError,
} from "./errors.js";
import { extractForm, payloadJsonSchema, responseJsonSchema } from "./forms.js";
import {
  checkDecision,
  configuredReceiptKeys,
  type ReceiptPublicKeys,
  shownSha256,
} from "./receipts.js";
import {
  type CreateTaskRequest,
  deriveIdempotencyKey,
  isTerminal,
  type JsonObject,
  MAX_POLL_SECONDS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
  type PollResponse,
  type TaskView,
} from "./wire.js";

// How long to keep trying to reach the server for the first create
// (AWAITHUMANS_CONNECT_TIMEOUT overrides): a missing server is usually a mistake to hear
// about now, not after the task's whole timeout.
const CREATE_WINDOW_SECONDS = 15;
// After the deadline the server's scheduler times the task out within a second; give it a
// little longer before deciding on our own.
const DEADLINE_GRACE_MS = 5_000;

/** Who should answer: an email, several emails, or the wire's own object. */
export type Assignee = string | string[] | JsonObject;

export interface AwaitHumanOptions<P extends z.ZodType, R extends z.ZodType> {
  /** The question, as the person sees it (1 to 500 characters). */
  task: string;
  /** What the person is shown, as a Zod schema; `payload` is parsed with it before sending. */
  payloadSchema: P;
  payload: z.input<P>;
  /** What the person answers; the form is derived from it (see `extractForm`). */
  responseSchema: R;
  /** 60 seconds to 30 days. */
  timeoutSeconds: number;
  /** Names the task: the same key resumes it. Default: derived from `task` and `payload`. */
  idempotencyKey?: string;
  /** Where to tell people: `"slack:@alice"`, `"email:ops@acme.com"`, ... */
  notify?: string[];
  assignTo?: Assignee;
  /** A verifier configuration, as the Python `VerifierConfig` serialises it. */
  verifier?: JsonObject;
  redactPayload?: boolean;
  taskMetadata?: JsonObject;
  /** Where the server posts the signed webhook when the task ends. */
  callbackUrl?: string;
  /** The answer to return (and record) if nobody answers in time, instead of throwing. */
  onTimeout?: z.input<R>;
  approvers?: string[];
  operatorsMayAnswer?: boolean;
  approvalsRequired?: number;
  rejectionPolicy?: "any_rejects" | "majority";
  reminderSeconds?: number[];
  escalateAfterSeconds?: number;
  escalateTo?: string[];
  escalateReassign?: boolean;
  /** Default: `AWAITHUMANS_URL`, the dev server's file, then `http://localhost:3001`. */
  serverUrl?: string;
  /** Default: `AWAITHUMANS_API_KEY`, or the dev server's token. */
  apiKey?: string;
  /** Stops the wait (the task stays open; the same call resumes it). */
  signal?: AbortSignal;
  /**
   * The server's receipt public key(s): the answer is returned only with a receipt signed
   * by one of them for this task, answer and question (else `ReceiptInvalidError`).
   * Default: `AWAITHUMANS_RECEIPT_PUBLIC_KEY`; neither set: no check.
   */
  receiptPublicKey?: ReceiptPublicKeys;
}

/**
 * Ask a human and wait for a validated answer.
 *
 * @returns The answer, parsed by `responseSchema`; after a timeout, the `onTimeout`
 *   default when one is given (`isDefault` says so). A decision of several approvers
 *   carries their votes (`approvalsOf`).
 * @throws TaskTimeoutError, TaskCancelledError, VerificationExhaustedError,
 *   SchemaValidationError (payload before sending, or the answer), TimeoutRangeError,
 *   IdempotencyConflictError, InvalidRequestError (the server refused the task),
 *   AuthenticationError, ServerUnreachableError; ReceiptInvalidError when a receipt key
 *   is configured and the answer's receipt does not check out (or the key is not one);
 *   the signal's reason once it aborts.
 */
export async function awaitHuman<P extends z.ZodType, R extends z.ZodType>(
  options: AwaitHumanOptions<P, R>,
): Promise<z.output<R>> {
  const body = buildRequest(options);
  // Before the task exists: a malformed key fails now, not after a person has answered.
  const check = receiptCheck(body, options.receiptPublicKey);
  const target = resolveServer(options.serverUrl, options.apiKey);
  const client = new TaskClient(target.url, { apiKey: target.apiKey, signal: options.signal });
  const { view, replayed } = await createTask(client, body);
  say(`✓ Task ${how(view, replayed)}: ${view.id}`);
  say(`  Review at: ${view.review_url ?? `${target.url}/task?id=${view.id}`}`);
  return waitForAnswer(client, view, options.responseSchema, {
    onTimeout: body.on_timeout,
    signal: options.signal,
    check,
  });
}

/** What runs on a completed poll before its answer is returned (the receipt check). */
export type DecisionCheck = (taskId: string, poll: PollResponse) => void;

/**
 * The receipt check of one call, when a key is given or `AWAITHUMANS_RECEIPT_PUBLIC_KEY`
 * is set (else undefined): the answer must come with a receipt signed by that key, for
 * this task, this answer and what this call sent (payload, form and response schema).
 *
 * @throws ReceiptInvalidError The key is not an Ed25519 public key.
 */
export function receiptCheck(
  body: CreateTaskRequest,
  publicKey?: ReceiptPublicKeys,
): DecisionCheck | undefined {
  const keys = configuredReceiptKeys(publicKey);
  if (keys === undefined) return undefined;
  const shown =
    body.form_definition === undefined
      ? undefined
      : shownSha256(body.payload, body.form_definition, body.response_schema);
  return (taskId, poll) => {
    checkDecision(poll.receipt, keys, { taskId, response: poll.response ?? null, shown });
  };
}

/**
 * Validate the arguments and build the `POST /api/tasks` body (no I/O).
 *
 * @throws TimeoutRangeError, SchemaValidationError
 */
export function buildRequest<P extends z.ZodType, R extends z.ZodType>(
  options: AwaitHumanOptions<P, R>,
  defaultKey?: string,
): CreateTaskRequest {
  const { timeoutSeconds } = options;
  if (
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < MIN_TIMEOUT_SECONDS ||
    timeoutSeconds > MAX_TIMEOUT_SECONDS
  ) {
    throw new TimeoutRangeError(timeoutSeconds, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS);
  }
  const payload = asJsonObject(parseOrThrow(options.payloadSchema, options.payload, "payload"));
  const onTimeout =
    options.onTimeout === undefined
      ? undefined
      : asJsonObject(parseOrThrow(options.responseSchema, options.onTimeout, "on_timeout default"));
  const body: CreateTaskRequest = {
    task: options.task,
    payload,
    payload_schema: payloadJsonSchema(options.payloadSchema) as JsonObject,
    response_schema: responseJsonSchema(options.responseSchema) as JsonObject,
    timeout_seconds: timeoutSeconds,
    idempotency_key:
      options.idempotencyKey ?? defaultKey ?? deriveIdempotencyKey(options.task, payload),
    form_definition: extractForm(options.responseSchema) as unknown as JsonObject,
  };
  const optional: Partial<CreateTaskRequest> = {
    assign_to: assignee(options.assignTo),
    notify: options.notify,
    verifier_config: options.verifier,
    redact_payload: options.redactPayload,
    callback_url: options.callbackUrl,
    task_metadata: options.taskMetadata,
    on_timeout: onTimeout,
    approvers: options.approvers,
    operators_may_answer: options.operatorsMayAnswer,
    approvals_required: options.approvalsRequired,
    rejection_policy: options.rejectionPolicy,
    reminder_seconds: options.reminderSeconds,
    escalate_after_seconds: options.escalateAfterSeconds,
    escalate_to: options.escalateTo,
    escalate_reassign: options.escalateReassign,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (body as unknown as Record<string, unknown>)[key] = value;
  }
  return body;
}

/** Create the task, trying to reach the server for a short window (at most the timeout). */
export async function createTask(
  client: TaskClient,
  body: CreateTaskRequest,
): Promise<{ view: TaskView; replayed: boolean }> {
  const windowSeconds = Math.min(connectWindowSeconds(), body.timeout_seconds);
  return client.createTask(body, Date.now() + windowSeconds * 1000);
}

export interface WaitOptions {
  /** The default answer's JSON (already checked against the response schema). */
  onTimeout?: JsonObject | undefined;
  signal?: AbortSignal | undefined;
  /** Runs on a completed poll before its answer is returned (see {@link receiptCheck}). */
  check?: DecisionCheck | undefined;
}

/** Long-poll `view`'s task until it is final; the parsed answer or the matching error. */
export async function waitForAnswer<R extends z.ZodType>(
  client: TaskClient,
  view: TaskView,
  responseSchema: R,
  options: WaitOptions = {},
): Promise<z.output<R>> {
  const deadline = deadlineOf(view);
  const tooLate = () => timedOut(view, responseSchema, options.onTimeout);
  // A replayed create of a task that already ended: its outcome, without a poll.
  if (isTerminal(view.status)) {
    const poll = pollOf(view);
    if (poll.status === "completed") options.check?.(view.id, poll);
    return outcomeOf(poll, view, responseSchema, options.onTimeout) as z.output<R>;
  }
  for (;;) {
    const remaining = (deadline - Date.now()) / 1000;
    let poll: PollResponse;
    try {
      poll = await client.poll(
        view.id,
        Math.min(MAX_POLL_SECONDS, Math.max(1, remaining)),
        // A dead server past the deadline means the human can no longer answer.
        deadline + DEADLINE_GRACE_MS,
      );
    } catch (err) {
      // Only past the deadline and its grace: with a default, the default is the answer.
      if (err instanceof ServerUnreachableError && options.onTimeout !== undefined) {
        return tooLate();
      }
      throw err;
    }
    if (poll.status === "completed") options.check?.(view.id, poll);
    const answer = outcomeOf(poll, view, responseSchema, options.onTimeout);
    if (answer !== undefined) return answer as z.output<R>;
    if (Date.now() > deadline + DEADLINE_GRACE_MS) return tooLate();
    if (options.signal?.aborted) throw options.signal.reason;
  }
}

/**
 * A terminal poll as the parsed answer or the matching error; undefined if not terminal.
 * A timed-out task gives the default the server applied, else the caller's `onTimeout`,
 * marked so `isDefault` tells it from a person's answer; a decision of several approvers
 * is marked with every vote (`approvalsOf`).
 */
export function outcomeOf<R extends z.ZodType>(
  poll: PollResponse,
  view: Pick<TaskView, "id" | "task" | "timeout_seconds">,
  responseSchema: R,
  onTimeout?: JsonObject,
): z.output<R> | undefined {
  switch (poll.status) {
    case "completed":
      return markApprovals(
        parseOrThrow(responseSchema, poll.response ?? {}, "response"),
        poll.approvals,
      );
    case "timed_out":
      return timedOut(view, responseSchema, onTimeout, poll.response ?? undefined);
    case "cancelled":
      throw new TaskCancelledError(view.task, view.id);
    case "verification_exhausted":
      throw new VerificationExhaustedError(view.task, poll.verification_attempt ?? 0, view.id);
    default:
      return undefined;
  }
}

function timedOut<R extends z.ZodType>(
  view: Pick<TaskView, "id" | "task" | "timeout_seconds">,
  responseSchema: R,
  onTimeout: JsonObject | undefined,
  stored?: JsonObject,
): z.output<R> {
  if (onTimeout === undefined) {
    throw new TaskTimeoutError(view.task, view.timeout_seconds, view.id);
  }
  // The server's record of the default wins over the caller's own.
  // Parsed afresh each time: marking never touches an object the caller holds.
  return markDefault(parseOrThrow(responseSchema, stored ?? onTimeout, "on_timeout default"));
}

/** A task read whole as its long-poll reports it. */
export function pollOf(view: TaskView): PollResponse {
  return {
    status: view.status,
    response: view.response ?? null,
    verification_attempt: view.verification_attempt ?? 0,
    default_applied: view.default_applied ?? false,
    receipt: view.receipt ?? null,
    approvals_required: view.approvals_required ?? 1,
    approvals: view.approvals ?? [],
  };
}

/** `schema.parse(value)`, with Zod's issues as a {@link SchemaValidationError}. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  which: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors: FieldError[] = result.error.issues.map((issue) => ({
    loc: issue.path.map((p) => (typeof p === "number" ? p : String(p))),
    msg: issue.message,
    type: issue.code,
  }));
  const summary = errors.map((e) => `${e.loc.join(".") || "(root)"}: ${e.msg}`).join("; ");
  throw new SchemaValidationError(which, summary, errors);
}

function asJsonObject(value: unknown): JsonObject {
  // What JSON keeps of a parsed value (a Date becomes its ISO string), as the wire sees it.
  const json: unknown = JSON.parse(JSON.stringify(value ?? null));
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SchemaValidationError("payload", "expected an object");
  }
  return json as JsonObject;
}

function assignee(value: Assignee | undefined): JsonObject | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return { email: value };
  if (Array.isArray(value)) return { emails: value };
  return value;
}

// The server's timeout_at is the truth (a replayed task started before this call did).
function deadlineOf(view: TaskView): number {
  const fallback = Date.now() + view.timeout_seconds * 1000;
  // A time without a UTC offset would be read as local time: trust the timeout instead.
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(view.timeout_at)) return fallback;
  const at = Date.parse(view.timeout_at);
  return Number.isNaN(at) ? fallback : Math.min(at, fallback);
}

function connectWindowSeconds(): number {
  const raw = process.env.AWAITHUMANS_CONNECT_TIMEOUT;
  const value = raw ? Number(raw) : Number.NaN;
  return Number.isFinite(value) ? Math.max(0, value) : CREATE_WINDOW_SECONDS;
}

function how(view: TaskView, replayed: boolean): string {
  if (!replayed) return "created";
  if (view.status === "completed") return "already answered";
  if (isTerminal(view.status)) return `already ${view.status.replaceAll("_", " ")}`;
  return "resumed";
}

function say(line: string): void {
  if (!process.env.AWAITHUMANS_QUIET) process.stderr.write(`${line}\n`);
}
