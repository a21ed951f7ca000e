/**
 * `awaitHuman` inside a LangGraph.js node: create the task, then `interrupt()` until the
 * task's outcome resumes the thread. The protocol of the Python adapter
 * (`awaithumans/adapters/langgraph/_node.py`), so both kinds of graph read the same tasks.
 *
 * LangGraph resumes an interrupted node by running it again from the top, and `interrupt()`
 * returns the resume value on that run. The task must therefore come out the same on every
 * run: its idempotency key is derived from the thread, the node's checkpoint namespace and
 * the call's position in the node, and the server replays it instead of creating another.
 *
 * Resume the thread with {@link resumeCommand} of the server's verified webhook (see
 * `verifyWebhook`), or with the task's answer read any other way.
 */
import { createHash } from "node:crypto";
import { Command, getConfig, interrupt } from "@langchain/langgraph";
import type { z } from "zod";
import {
  type AwaitHumanOptions,
  buildRequest,
  createTask,
  outcomeOf,
  parseOrThrow,
} from "../await.js";
import { TaskClient } from "../client.js";
import { ErrorCode } from "../codes.js";
import { resolveServer } from "../discovery.js";
import { ConfigurationError, InvalidResumeError } from "../errors.js";
import type { WebhookEvent, WebhookTaskData } from "../webhook.js";
import { type JsonObject, type PollResponse, TaskStatus, type TaskView } from "../wire.js";

/** Key of the interrupt value LangGraph hands to clients: `{ awaithumans: {...} }`. */
export const INTERRUPT_KEY = "awaithumans";
// Counter of calls within one execution of a node, kept in that execution's own
// `configurable` (LangGraph makes a fresh one per execution, so it restarts at 0 on resume).
const COUNTER_KEY = "__awaithumans_call_index";
const STATUSES: ReadonlySet<unknown> = new Set(Object.values(TaskStatus));
// The fields of the webhook's data the node needs: the resume value is checkpointed, so it
// stays small and free of personal data such as the answering person's email.
const RESUME_FIELDS = ["task_id", "status", "response", "verification_attempt"] as const;

/** What the interrupt carries (`payload` left out when `redactPayload`). */
export interface InterruptInfo {
  task_id: string;
  review_url: string;
  task: string;
  timeout_at: string;
  payload?: JsonObject;
}

/**
 * Ask a human from inside a LangGraph node; the graph pauses until they answer.
 *
 * Takes the options of `awaitHuman`; `idempotencyKey` defaults to the node's key, and
 * `taskMetadata` gets a `langgraph` entry naming the thread (as the Python relay reads it).
 *
 * @returns On the resumed run, the answer parsed by `responseSchema`.
 * @throws ConfigurationError Outside a node, or without a `thread_id` (no checkpointer).
 * @throws InvalidResumeError Resumed with another task's outcome, or a non-final one.
 */
export async function awaitHumanInNode<P extends z.ZodType, R extends z.ZodType>(
  options: Omit<AwaitHumanOptions<P, R>, "signal">,
): Promise<z.output<R>> {
  const { threadId, checkpointNs, index } = nodeIdentity();
  const metadata: JsonObject = {
    ...(options.taskMetadata ?? {}),
    langgraph: { thread_id: threadId, checkpoint_ns: checkpointNs },
  };
  const body = buildRequest(
    { ...options, taskMetadata: metadata },
    nodeIdempotencyKey(threadId, checkpointNs, index),
  );
  const target = resolveServer(options.serverUrl, options.apiKey);
  const client = new TaskClient(target.url, { apiKey: target.apiKey });
  const { view } = await createTask(client, body);
  const info: InterruptInfo = {
    task_id: view.id,
    review_url: view.review_url ?? `${target.url}/task?id=${view.id}`,
    task: view.task,
    timeout_at: view.timeout_at,
  };
  if (!body.redact_payload) info.payload = body.payload;
  // The first run stops here (LangGraph's interrupt throws); the resumed run gets the value.
  const resumedWith: unknown = interrupt({ [INTERRUPT_KEY]: info });
  return answerFromResume(resumedWith, view, options.responseSchema, body.on_timeout);
}

/**
 * The task key of call `index` in the node execution `checkpointNs` of a thread: the same
 * bits as the Python adapter's `node_idempotency_key`.
 */
export function nodeIdempotencyKey(threadId: string, checkpointNs: string, index: number): string {
  const digest = createHash("sha256")
    .update(`${threadId}\x1f${checkpointNs}\x1f${index}`, "utf8")
    .digest("hex");
  return `langgraph:${digest.slice(0, 48)}`;
}

/** The value to resume a waiting node with, from a webhook's event (or its `data`). */
export function resumeValue(event: WebhookEvent | WebhookTaskData): JsonObject {
  const data = ("data" in event ? event.data : event) as unknown as Record<string, unknown>;
  const out: JsonObject = {};
  for (const key of RESUME_FIELDS) out[key] = (data[key] ?? null) as JsonObject[string];
  return out;
}

/** `new Command({ resume })` for a verified webhook event: pass it to `graph.invoke`. */
export function resumeCommand(
  event: WebhookEvent | WebhookTaskData,
): Command<JsonObject, never, never> {
  // No update and no goto: typed `never` so it fits any graph's `invoke`.
  return new Command<JsonObject, never, never>({ resume: resumeValue(event) });
}

/** The awaithumans task id an interrupt value carries, or undefined if it is not ours. */
export function interruptTaskId(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const info = (value as Record<string, unknown>)[INTERRUPT_KEY];
  const taskId =
    typeof info === "object" && info !== null ? (info as InterruptInfo).task_id : undefined;
  return typeof taskId === "string" ? taskId : undefined;
}

/**
 * A resume value as the typed answer, or the typed error: the webhook's data
 * (`{status, response, ...}`) or a plain response object.
 */
export function answerFromResume<R extends z.ZodType>(
  value: unknown,
  view: Pick<TaskView, "id" | "task" | "timeout_seconds">,
  responseSchema: R,
  onTimeout?: JsonObject,
): z.output<R> {
  const record = value as Record<string, unknown> | null;
  if (
    typeof record === "object" &&
    record !== null &&
    STATUSES.has(record.status) &&
    "response" in record
  ) {
    const sentFor = record.task_id;
    if (sentFor !== undefined && sentFor !== null && sentFor !== view.id) {
      // A relay matched the wrong interrupt; answering with it would be silent harm.
      throw new InvalidResumeError(
        `The run was resumed for task ${JSON.stringify(sentFor)}, but waits for ${JSON.stringify(view.id)}.`,
        { taskId: view.id, code: ErrorCode.RESUME_TASK_MISMATCH },
      );
    }
    const poll: PollResponse = {
      status: record.status as TaskStatus,
      response: (record.response as JsonObject | null) ?? null,
      verification_attempt: Number(record.verification_attempt ?? 0),
    };
    const answer = outcomeOf(poll, view, responseSchema, onTimeout);
    if (answer === undefined) {
      throw new InvalidResumeError(
        `The run was resumed for task ${JSON.stringify(view.id)} with non-final status ${JSON.stringify(poll.status)}.`,
        { taskId: view.id, code: ErrorCode.RESUME_NOT_FINAL },
      );
    }
    return answer;
  }
  return parseOrThrow(responseSchema, value, "response");
}

function nodeIdentity(): { threadId: string; checkpointNs: string; index: number } {
  let configurable: Record<string, unknown> | undefined;
  try {
    configurable = getConfig().configurable as Record<string, unknown> | undefined;
  } catch {
    configurable = undefined;
  }
  if (configurable === undefined) {
    throw new ConfigurationError("awaitHumanInNode must be called inside a LangGraph node");
  }
  const threadId = configurable.thread_id;
  if (threadId === undefined || threadId === null) {
    // Without a thread there is no checkpoint to resume, so the interrupt would be lost.
    throw new ConfigurationError(
      "awaitHumanInNode needs a graph compiled with a checkpointer and invoked with { configurable: { thread_id: ... } }",
    );
  }
  const index = Number(configurable[COUNTER_KEY] ?? 0);
  configurable[COUNTER_KEY] = index + 1;
  const ns = configurable.checkpoint_ns;
  return { threadId: String(threadId), checkpointNs: typeof ns === "string" ? ns : "", index };
}
