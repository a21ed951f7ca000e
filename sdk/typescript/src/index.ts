/**
 * awaithumans for Node: ask a person from an agent and get a typed, validated answer back.
 *
 * ```ts
 * import { z } from "zod";
 * import { awaitHuman } from "awaithumans";
 *
 * const decision = await awaitHuman({
 *   task: "Refund $180 for order ord_1042?",
 *   payloadSchema: z.object({ orderId: z.string(), amountUsd: z.number() }),
 *   payload: { orderId: "ord_1042", amountUsd: 180 },
 *   responseSchema: z.object({ approved: z.boolean(), notes: z.string().optional() }),
 *   timeoutSeconds: 3600,
 * });
 * ```
 */
export { type Approval, approvalsOf } from "./approvals.js";
export {
  type Assignee,
  type AwaitHumanOptions,
  awaitHuman,
  buildRequest,
  type DecisionCheck,
  outcomeOf,
  parseOrThrow,
  receiptCheck,
  waitForAnswer,
} from "./await.js";
export { backoffDelayMs, TaskClient, type TaskClientOptions } from "./client.js";
export { ErrorCode } from "./codes.js";
export { isDefault } from "./defaults.js";
export {
  DEFAULT_URL,
  devFilePath,
  readDevFile,
  resolveServer,
  type ServerTarget,
} from "./discovery.js";
export * from "./errors.js";
export {
  ENUM_NAMES_KEY,
  extractForm,
  FALLBACK_KEY,
  type FieldKind,
  FORM_VERSION,
  type FormDefinition,
  type FormField,
  type FormOption,
  formFromJsonSchema,
  humanize,
  payloadJsonSchema,
  responseJsonSchema,
} from "./forms.js";
export {
  canonicalBytes,
  canonicalJson,
  checkDecision,
  keyIdOf,
  parsePublicKeys,
  RECEIPT_ALGORITHM,
  RECEIPT_PUBLIC_KEY_ENV,
  RECEIPT_VERSION,
  type ReceiptPublicKeys,
  sha256Of,
  shownSha256,
  signedBytes,
  type VerifiedReceipt,
  verifyReceipt,
} from "./receipts.js";
export {
  DEFAULT_TOLERANCE_SECONDS,
  type HeaderSource,
  signWebhook,
  type VerifyOptions,
  verifyWebhook,
  type WebhookEvent,
  type WebhookTaskData,
} from "./webhook.js";
export {
  type ApprovalView,
  type CreateTaskRequest,
  deriveIdempotencyKey,
  type ErrorBody,
  isTerminal,
  type Json,
  type JsonObject,
  MAX_POLL_SECONDS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
  type PollResponse,
  pythonJson,
  TaskStatus,
  type TaskView,
} from "./wire.js";
