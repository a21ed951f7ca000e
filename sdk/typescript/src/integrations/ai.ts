/**
 * Tool approvals of the Vercel AI SDK (`ai` 5.1+/6), answered by a person through
 * awaithumans.
 *
 * A tool declared with `needsApproval` makes `generateText` stop with
 * `tool-approval-request` parts in `result.content`; the run goes on once the messages
 * carry a `tool-approval-response` for each. {@link askToolApprovals} asks a person about
 * every request (one task each, in parallel) and returns that tool message:
 *
 * ```ts
 * const result = await generateText({ model, tools, messages });
 * const approvals = await askToolApprovals(result.content, { timeoutSeconds: 3600, notify });
 * if (approvals) {
 *   messages.push(...result.response.messages, approvals);
 *   const next = await generateText({ model, tools, messages }); // runs or skips the tools
 * }
 * ```
 *
 * Only types come from `ai` (an optional peer dependency); nothing of it is loaded here.
 */

import { createHash } from "node:crypto";
import type { ToolApprovalResponse, ToolModelMessage } from "ai";
import { z } from "zod";
import type { Assignee } from "../await.js";
import { awaitHuman } from "../await.js";

/** What the person answers about one tool call. */
export const ToolDecision = z
  .object({
    approved: z.boolean().describe("Let the agent run this tool call?"),
    reason: z.string().max(2000).optional().describe("Why; a denial's reason is told to the model"),
  })
  .meta({ title: "ToolDecision" });
export type ToolDecision = z.output<typeof ToolDecision>;

/** What the person is shown: the tool's name and the input the model chose. */
export const ToolCallPayload = z.object({
  tool: z.string(),
  input: z.unknown(),
});

/** A `tool-approval-request` part of `result.content` (the fields read here). */
export interface ApprovalRequestPart {
  type: "tool-approval-request";
  approvalId: string;
  toolCall: { toolCallId: string; toolName: string; input: unknown };
}

export interface ToolApprovalOptions {
  timeoutSeconds: number;
  notify?: string[];
  assignTo?: Assignee;
  /** The question for one call; default `Allow <tool>?`. */
  task?: (call: ApprovalRequestPart["toolCall"]) => string;
  /**
   * Names the conversation, so a process that restarts and reruns the same step finds
   * the same tasks: the key is derived from it and the tool call's id. Without it, each
   * approval request (its `approvalId`, new on every `generateText`) is a task of its own.
   */
  conversationId?: string;
  /** Deny (with this reason) when nobody answers in time, instead of throwing. */
  denyOnTimeout?: string;
  serverUrl?: string;
  apiKey?: string;
  signal?: AbortSignal;
}

/**
 * Ask a person about every tool approval request in `content`.
 *
 * @returns The `{ role: "tool", content: [tool-approval-response, ...] }` message to append,
 *   or undefined when `content` asks for no approval.
 * @throws The errors of `awaitHuman` (TaskTimeoutError unless `denyOnTimeout`, ...).
 */
export async function askToolApprovals(
  content: ReadonlyArray<{ type: string }>,
  options: ToolApprovalOptions,
): Promise<ToolModelMessage | undefined> {
  const requests = content.filter(isApprovalRequest);
  if (requests.length === 0) return undefined;
  const responses = await Promise.all(requests.map((part) => askOne(part, options)));
  return { role: "tool", content: responses };
}

/** Ask about one approval request; the `tool-approval-response` part for it. */
export async function askOne(
  part: ApprovalRequestPart,
  options: ToolApprovalOptions,
): Promise<ToolApprovalResponse> {
  const call = part.toolCall;
  const decision = await awaitHuman({
    task: (options.task ?? defaultTask)(call),
    payloadSchema: ToolCallPayload,
    payload: { tool: call.toolName, input: call.input },
    responseSchema: ToolDecision,
    timeoutSeconds: options.timeoutSeconds,
    idempotencyKey: approvalKey(part, options.conversationId),
    notify: options.notify,
    assignTo: options.assignTo,
    taskMetadata: { ai_sdk: { tool: call.toolName, tool_call_id: call.toolCallId } },
    onTimeout:
      options.denyOnTimeout === undefined
        ? undefined
        : { approved: false, reason: options.denyOnTimeout },
    serverUrl: options.serverUrl,
    apiKey: options.apiKey,
    signal: options.signal,
  });
  const response: ToolApprovalResponse = {
    type: "tool-approval-response",
    approvalId: part.approvalId,
    approved: decision.approved,
  };
  if (decision.reason !== undefined) response.reason = decision.reason;
  return response;
}

/** The idempotency key of one approval request (see `conversationId`). */
export function approvalKey(part: ApprovalRequestPart, conversationId?: string): string {
  const basis =
    conversationId === undefined
      ? `approval\x1f${part.approvalId}`
      : `conversation\x1f${conversationId}\x1f${part.toolCall.toolCallId}`;
  return `ai-sdk:${createHash("sha256").update(basis).digest("hex").slice(0, 48)}`;
}

function defaultTask(call: ApprovalRequestPart["toolCall"]): string {
  return `Allow ${call.toolName}?`.slice(0, 500);
}

function isApprovalRequest(part: { type: string }): part is ApprovalRequestPart {
  return part.type === "tool-approval-request";
}
