/**
 * The one error tree, the same as the Python SDK's (`awaithumans/core/_errors.py`):
 *
 * ```
 * AwaitHumansError                      code, message, hint
 * ├── ApiError                          statusCode, details: the server refused a request
 * │   ├── AuthenticationError           401
 * │   │   └── PermissionDeniedError     403
 * │   ├── IdempotencyConflictError      409
 * │   ├── InvalidRequestError           any other 4xx (422 included)
 * │   └── TaskNotFoundError             404 (taskId set too)
 * ├── TaskError                         taskId
 * │   ├── TaskTimeoutError
 * │   ├── TaskCancelledError
 * │   ├── VerificationExhaustedError
 * │   └── InvalidResumeError
 * ├── SchemaValidationError             which, errors
 * ├── TimeoutRangeError
 * ├── ServerUnreachableError
 * ├── ConfigurationError
 * ├── NotOurEventError
 * ├── InvalidSignatureError             a webhook's signature does not check out
 * └── ReceiptInvalidError               a decision receipt fails its check (reason)
 * ```
 *
 * Programs match on `.code` (an {@link ErrorCode}); `instanceof` works as well. JavaScript
 * has no multiple inheritance, so `TaskNotFoundError` is an `ApiError` carrying `taskId`.
 */
import { ErrorCode } from "./codes.js";

/** A field error, as the server and the Python SDK list them. */
export interface FieldError {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

export interface ErrorOptions {
  code?: string;
  hint?: string;
  cause?: unknown;
}

/** Root of every error this SDK throws. */
export class AwaitHumansError extends Error {
  static readonly defaultCode: string = ErrorCode.AWAITHUMANS_ERROR;
  /** Stable machine-readable identifier, e.g. `"TIMEOUT_EXCEEDED"`. */
  readonly code: string;
  /** What to do about it, when there is something to do. */
  readonly hint: string | undefined;

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? (new.target as typeof AwaitHumansError).defaultCode;
    this.hint = options.hint;
  }

  override toString(): string {
    const text = `[${this.code}] ${this.message}`;
    return this.hint ? `${text} Hint: ${this.hint}` : text;
  }
}

export interface ApiErrorOptions extends ErrorOptions {
  statusCode?: number;
  details?: Record<string, unknown>[];
}

/** The server refused a request. */
export class ApiError extends AwaitHumansError {
  static readonly defaultStatus: number = 400;
  readonly statusCode: number;
  readonly details: Record<string, unknown>[];

  constructor(message: string, options: ApiErrorOptions = {}) {
    super(message, options);
    this.statusCode = options.statusCode ?? (new.target as typeof ApiError).defaultStatus;
    this.details = options.details ?? [];
  }
}

/** The server refused the credential (missing, wrong or revoked). */
export class AuthenticationError extends ApiError {
  static override readonly defaultCode: string = ErrorCode.UNAUTHORIZED;
  static override readonly defaultStatus: number = 401;
}

/** The credential is valid but may not do this. */
export class PermissionDeniedError extends AuthenticationError {
  static override readonly defaultCode: string = ErrorCode.FORBIDDEN;
  static override readonly defaultStatus: number = 403;
}

/** The idempotency key is already used by a task with different content. */
export class IdempotencyConflictError extends ApiError {
  static override readonly defaultCode: string = ErrorCode.IDEMPOTENCY_CONFLICT;
  static override readonly defaultStatus: number = 409;
  readonly key: string;

  constructor(key: string, detail?: string) {
    super(
      `Idempotency key ${JSON.stringify(key)} is already used by a task with different content.${detail ? ` ${detail}` : ""}`,
      { hint: "Use a new key for a new question; reuse a key only to resume the same one." },
    );
    this.key = key;
  }
}

/** The server rejected the request as malformed (a 4xx other than the cases above). */
export class InvalidRequestError extends ApiError {
  static override readonly defaultCode: string = ErrorCode.INVALID_REQUEST;
}

/** The server has no task with that id (or the credential may not see it). */
export class TaskNotFoundError extends ApiError {
  static override readonly defaultCode: string = ErrorCode.TASK_NOT_FOUND;
  static override readonly defaultStatus: number = 404;
  readonly taskId: string;

  constructor(taskId: string) {
    super(`Task ${JSON.stringify(taskId)} does not exist on the server.`, {
      hint: "Was the server started with a fresh database?",
    });
    this.taskId = taskId;
  }
}

/** An error about one task; `taskId` names it (undefined if it was never created). */
export class TaskError extends AwaitHumansError {
  readonly taskId: string | undefined;

  constructor(message: string, options: ErrorOptions & { taskId?: string } = {}) {
    super(message, options);
    this.taskId = options.taskId;
  }
}

/** No human answered before the task's deadline. */
export class TaskTimeoutError extends TaskError {
  static override readonly defaultCode: string = ErrorCode.TIMEOUT_EXCEEDED;
  readonly timeoutSeconds: number;

  constructor(task: string, timeoutSeconds: number, taskId?: string) {
    super(`No human answered ${JSON.stringify(task)} within ${timeoutSeconds}s.`, {
      taskId,
      hint: "Raise timeoutSeconds, or handle the timeout as a decision of its own.",
    });
    this.timeoutSeconds = timeoutSeconds;
  }
}

/** An operator or an agent cancelled the task. */
export class TaskCancelledError extends TaskError {
  static override readonly defaultCode: string = ErrorCode.TASK_CANCELLED;

  constructor(task: string, taskId?: string) {
    super(`Task ${JSON.stringify(task)} was cancelled.`, { taskId });
  }
}

/** The verifier rejected every answer the humans gave. */
export class VerificationExhaustedError extends TaskError {
  static override readonly defaultCode: string = ErrorCode.VERIFICATION_EXHAUSTED;
  readonly attempts: number;

  constructor(task: string, attempts: number, taskId?: string) {
    super(`The verifier rejected all ${attempts} answer(s) to ${JSON.stringify(task)}.`, {
      taskId,
      hint: "Read the verifier's reasons in the task's audit trail.",
    });
    this.attempts = attempts;
  }
}

/** A paused run was resumed with an outcome that is not its task's final one. */
export class InvalidResumeError extends TaskError {
  static override readonly defaultCode: string = ErrorCode.RESUME_NOT_FINAL;
}

/** A payload or a response does not match its schema. */
export class SchemaValidationError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.SCHEMA_VALIDATION_FAILED;
  /** `"payload"`, `"response"`, `"on_timeout default"` or `"request"` (refused by the server). */
  readonly which: string;
  readonly errors: FieldError[];

  constructor(which: string, detail: string, errors: FieldError[] = []) {
    super(`The ${which} does not match its schema: ${detail}`);
    this.which = which;
    this.errors = errors;
  }
}

/** `timeoutSeconds` is outside what the server accepts. */
export class TimeoutRangeError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.TIMEOUT_OUT_OF_RANGE;

  constructor(timeoutSeconds: number, minimum: number, maximum: number) {
    super(`timeoutSeconds=${timeoutSeconds} is out of range; use ${minimum}..${maximum}.`);
  }
}

/** The awaithumans server could not be reached before the deadline. */
export class ServerUnreachableError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.SERVER_UNREACHABLE;
  readonly url: string;

  constructor(url: string, detail: string) {
    super(`Cannot reach the awaithumans server at ${url}: ${detail}`, {
      hint: "Start it with `awaithumans dev`, or set AWAITHUMANS_URL.",
    });
    this.url = url;
  }
}

/** The call is made where it cannot work (outside a LangGraph node, and the like). */
export class ConfigurationError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.CONFIGURATION_ERROR;
}

/** A webhook receiver got an event that is not an awaithumans task event. */
export class NotOurEventError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.NOT_OUR_EVENT;
}

/** A webhook's signature is missing, malformed, stale or made with another secret. */
export class InvalidSignatureError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.INVALID_SIGNATURE;
}

/**
 * A decision receipt does not prove what it should: the answer is not to be trusted.
 * `reason` says what failed, for programs: `"missing"` (no receipt came with the answer),
 * `"malformed"`, `"public_key"` (the key given is not an Ed25519 public key),
 * `"unknown_key"` (signed with a key not among those given), `"signature"` (altered, or
 * signed by another key) or `"mismatch"` (valid, but for another task, answer or question).
 */
export class ReceiptInvalidError extends AwaitHumansError {
  static override readonly defaultCode: string = ErrorCode.RECEIPT_INVALID;
  readonly reason: string;
  /** The task the receipt names, when it names one. */
  readonly taskId: string | undefined;

  constructor(message: string, options: { reason: string; taskId?: string | undefined }) {
    super(message, {
      hint: "Check the server's public key (GET /api/receipts/public-keys, or `awaithumans receipt-key`); a receipt that fails is not proof of a decision.",
    });
    this.reason = options.reason;
    this.taskId = options.taskId;
  }
}
