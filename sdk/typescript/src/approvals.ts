/**
 * `approvalsRequired`: each approver's vote behind a decision, and how to read them.
 *
 * A task that needs several approvals completes with the deciding vote's answer;
 * {@link approvalsOf} gives every vote that led there (who, through which channel, when,
 * approved or not, and their own answer), oldest first. As in the Python SDK
 * (`approvals_of`), the votes are recorded against the returned object itself: a copy of
 * the answer has none.
 */
import type { ApprovalView, JsonObject } from "./wire.js";

/** One person's vote on a task that needed several approvals. */
export interface Approval {
  /** The voter's directory id (`"admin"` for the server's admin token). */
  readonly userId: string;
  /** Their email, when the directory has one. */
  readonly email: string | null;
  /** Their name as the directory shows it. */
  readonly displayName: string | null;
  /** Where they voted: `dashboard`, `slack`, `email` or `api`. */
  readonly channel: string;
  /** When the vote was recorded. */
  readonly at: Date;
  /** True for an approval, false for a rejection. */
  readonly approved: boolean;
  /** Their whole answer, as the response schema's JSON. */
  readonly response: JsonObject | null;
}

// The answers returned with votes; weak, so marking keeps nothing alive.
const marked = new WeakMap<object, readonly Approval[]>();

/**
 * The votes behind `answer` (a call's return value), oldest first. Empty for a task that
 * needed one answer, and for anything the call did not return itself.
 */
export function approvalsOf(answer: unknown): Approval[] {
  if (typeof answer !== "object" || answer === null) return [];
  return [...(marked.get(answer) ?? [])];
}

/** Record `votes` as the ones behind `answer` (see {@link approvalsOf}) and return it. */
export function markApprovals<T>(answer: T, votes: readonly ApprovalView[] | null | undefined): T {
  if (!votes || votes.length === 0 || typeof answer !== "object" || answer === null) return answer;
  const approvals = votes.map((v) =>
    Object.freeze({
      userId: v.user_id,
      email: v.email ?? null,
      displayName: v.display_name ?? null,
      channel: v.channel,
      at: new Date(v.at),
      approved: v.approved,
      response: v.response ?? null,
    }),
  );
  marked.set(answer, Object.freeze(approvals));
  return answer;
}
