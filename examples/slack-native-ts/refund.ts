/**
 * Slack, from Node: a refund approval sent to one person's Slack DMs, answered in Slack's
 * modal. The TypeScript twin of examples/slack-native/refund.py.
 *
 * Start a server that can reach Slack (see README.md), then `npm start -- @alice` (their
 * Slack @handle, email or member id). They get a direct message with **Approve in Slack**
 * (the form, made from RefundDecision, opens as a modal) and **Open in Dashboard**;
 * whichever they choose, this script gets the typed answer.
 */
import { awaitHuman } from "awaithumans";
import { z } from "zod";

const RefundRequest = z.object({
  order_id: z.string(),
  amount_usd: z.number().int().describe("Amount to send back, in dollars"),
  reason: z.string(),
});

const RefundDecision = z
  .object({
    approved: z.boolean().describe("Send the money back?"),
    notes: z.string().nullable().default(null).describe("Anything the agent should know"),
  })
  .meta({ title: "RefundDecision" });

/**
 * `alice@acme.com`, `@alice` or `U0123ABCD` -> the route the server understands. Each
 * names one person: the message goes to their DMs and they become the task's assignee,
 * the one allowed to answer it (operators may step in).
 */
export function slackRoute(reviewer: string): string {
  return reviewer.startsWith("slack:") || reviewer.startsWith("slack+")
    ? reviewer
    : `slack:${reviewer}`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length < 1 || argv.length > 2) {
    console.error("usage: npm start -- REVIEWER [ORDER_ID]");
    console.error("  REVIEWER: their Slack email, @handle or member id (U...)");
    return 2;
  }
  const [reviewer = "", orderId = "ord_1042"] = argv;
  const decision = await awaitHuman({
    task: `Refund $180 for order ${orderId}?`,
    payloadSchema: RefundRequest,
    payload: { order_id: orderId, amount_usd: 180, reason: "Arrived broken" },
    responseSchema: RefundDecision,
    timeoutSeconds: 3600,
    notify: [slackRoute(reviewer)],
    // One task per order: running the script again waits on the same DM.
    idempotencyKey: `slack-refund-ts:${orderId}`,
  });
  // decision is { approved: boolean; notes: string | null }, checked by Zod.
  const verdict = decision.approved ? "approved" : "declined";
  console.log(`Refund for ${orderId} ${verdict}: ${decision.notes ?? "no notes"}`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
