/**
 * The Vercel AI SDK and LangGraph.js helpers, with the real libraries (`ai`, and
 * `@langchain/langgraph` with its in-memory checkpointer), against a real server.
 * The model is the AI SDK's own `MockLanguageModelV3`: what it says is scripted, what the
 * SDK does with it (approval requests, running or skipping the tool) is the library's.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { Annotation, MemorySaver, StateGraph } from "@langchain/langgraph";
import { generateText, type ModelMessage, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import { ConfigurationError, TaskCancelledError, verifyWebhook } from "../src/index.js";
import { type ApprovalRequestPart, approvalKey, askToolApprovals } from "../src/integrations/ai.js";
import { awaitHumanInNode, interruptTaskId, resumeCommand } from "../src/integrations/langgraph.js";
import { api, freePort, startServer, type TestServer, taskIdByKey, waitFor } from "./helpers.js";

process.env.AWAITHUMANS_QUIET = "1";

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

describe("Vercel AI SDK: askToolApprovals", () => {
  test("a person approves one refund and denies another; the SDK runs only the first", async () => {
    const refunded: string[] = [];
    const tools = {
      refund: tool({
        description: "Refund an order",
        inputSchema: z.object({ orderId: z.string(), amountUsd: z.number() }),
        needsApproval: true,
        execute: async ({ orderId }) => {
          refunded.push(orderId);
          return { refunded: orderId };
        },
      }),
    };
    let calls = 0;
    const prompts: unknown[] = [];
    const model = new MockLanguageModelV3({
      doGenerate: async (options) => {
        calls += 1;
        prompts.push(options.prompt);
        if (calls === 1) {
          return {
            content: [
              {
                type: "tool-call",
                toolCallId: "call_1",
                toolName: "refund",
                input: JSON.stringify({ orderId: "ord_1", amountUsd: 20 }),
              },
              {
                type: "tool-call",
                toolCallId: "call_2",
                toolName: "refund",
                input: JSON.stringify({ orderId: "ord_2", amountUsd: 9000 }),
              },
            ],
            finishReason: { unified: "tool-calls", raw: undefined },
            usage,
            warnings: [],
          };
        }
        return {
          content: [{ type: "text", text: "One refund done, one declined." }],
          finishReason: { unified: "stop", raw: undefined },
          usage,
          warnings: [],
        };
      },
    });
    const messages: ModelMessage[] = [{ role: "user", content: "Refund ord_1 and ord_2" }];
    const first = await generateText({ model, tools, messages });
    const requests = first.content.filter(
      (p): p is typeof p & ApprovalRequestPart => p.type === "tool-approval-request",
    );
    assert.equal(requests.length, 2);
    assert.deepStrictEqual(refunded, []);

    const asking = askToolApprovals(first.content, {
      timeoutSeconds: 600,
      conversationId: "conv-42",
      task: (call) => `Refund ${(call.input as { orderId: string }).orderId}?`,
      serverUrl: server.url,
      apiKey: server.adminToken,
    });
    const [one, two] = requests;
    assert.ok(one && two);
    const id1 = await taskIdByKey(server, approvalKey(one, "conv-42"));
    const id2 = await taskIdByKey(server, approvalKey(two, "conv-42"));
    const { json: task } = await api(server, "GET", `/api/tasks/${id1}`);
    assert.equal(task.task, "Refund ord_1?");
    assert.deepStrictEqual(task.payload, {
      tool: "refund",
      input: { orderId: "ord_1", amountUsd: 20 },
    });
    await api(server, "POST", `/api/tasks/${id1}/complete`, { response: { approved: true } });
    await api(server, "POST", `/api/tasks/${id2}/complete`, {
      response: { approved: false, reason: "Over the limit" },
    });
    const approvals = await asking;
    assert.ok(approvals);
    assert.deepStrictEqual(approvals, {
      role: "tool",
      content: [
        { type: "tool-approval-response", approvalId: one.approvalId, approved: true },
        {
          type: "tool-approval-response",
          approvalId: two.approvalId,
          approved: false,
          reason: "Over the limit",
        },
      ],
    });

    messages.push(...first.response.messages, approvals);
    const second = await generateText({ model, tools, messages });
    assert.equal(second.text, "One refund done, one declined.");
    assert.deepStrictEqual(refunded, ["ord_1"]);
    // The model was told the outcome of both calls: a result and a denial.
    const lastPrompt = JSON.stringify(prompts.at(-1));
    assert.match(lastPrompt, /"refunded":"ord_1"/);
    assert.match(lastPrompt, /execution-denied/);
    assert.match(lastPrompt, /Over the limit/);

    // Asked again (a restarted process), the same conversation finds the same tasks.
    const again = await askToolApprovals(first.content, {
      timeoutSeconds: 600,
      conversationId: "conv-42",
      task: (call) => `Refund ${(call.input as { orderId: string }).orderId}?`,
      serverUrl: server.url,
      apiKey: server.adminToken,
    });
    assert.deepStrictEqual(again, approvals);
    assert.equal(await askToolApprovals([{ type: "text" }], { timeoutSeconds: 600 }), undefined);
  });
});

describe("LangGraph.js: awaitHumanInNode", () => {
  const Decision = z.object({ approved: z.boolean(), notes: z.string().optional() });
  const State = Annotation.Root({
    orderId: Annotation<string>(),
    decision: Annotation<z.output<typeof Decision> | undefined>(),
  });

  function graph(callbackUrl: string) {
    return new StateGraph(State)
      .addNode("approve", async (state) => {
        const decision = await awaitHumanInNode({
          task: `Refund ${state.orderId}?`,
          payloadSchema: z.object({ orderId: z.string() }),
          payload: { orderId: state.orderId },
          responseSchema: Decision,
          timeoutSeconds: 600,
          callbackUrl,
          serverUrl: server.url,
          apiKey: server.adminToken,
        });
        return { decision };
      })
      .addEdge("__start__", "approve")
      .addEdge("approve", "__end__")
      .compile({ checkpointer: new MemorySaver() });
  }

  test("interrupts, and the server's webhook resumes the thread with the answer", async () => {
    const port = await freePort();
    const app = graph(`http://127.0.0.1:${port}/resume`);
    const resumed: unknown[] = [];
    const receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        try {
          const event = verifyWebhook(Buffer.concat(chunks), req.headers, server.webhookSecret);
          const run = event.data.task_metadata?.langgraph as { thread_id: string } | undefined;
          const thread = run?.thread_id;
          resumed.push(
            await app.invoke(resumeCommand(event), { configurable: { thread_id: thread } }),
          );
          res.writeHead(200).end("{}");
        } catch (err) {
          resumed.push(err);
          res.writeHead(500).end("{}");
        }
      });
    });
    await new Promise<void>((ok) => receiver.listen(port, "127.0.0.1", ok));
    try {
      const config = { configurable: { thread_id: "thread-refund-7" } };
      await app.invoke({ orderId: "ord_7" }, config);
      const snapshot = await app.getState(config);
      const interrupts = snapshot.tasks.flatMap((t) => t.interrupts);
      assert.equal(interrupts.length, 1);
      const taskId = interruptTaskId(interrupts[0]?.value);
      assert.ok(taskId);
      const { json: task } = await api(server, "GET", `/api/tasks/${taskId}`);
      assert.match(String(task.idempotency_key), /^langgraph:[0-9a-f]{48}$/);
      assert.deepStrictEqual((task.task_metadata as { langgraph: unknown }).langgraph, {
        thread_id: "thread-refund-7",
        checkpoint_ns: (task.task_metadata as { langgraph: { checkpoint_ns: string } }).langgraph
          .checkpoint_ns,
      });

      await api(server, "POST", `/api/tasks/${taskId}/complete`, {
        response: { approved: true, notes: "fine" },
      });
      const final = await waitFor(() => resumed[0], { what: "the resumed run" });
      assert.deepStrictEqual(final, {
        orderId: "ord_7",
        decision: { approved: true, notes: "fine" },
      });
      // The node ran again on resume; the server replayed its task instead of a second one.
      const { json } = await api(server, "GET", "/api/tasks?limit=200");
      const same = (json.items as { idempotency_key: string }[]).filter(
        (t) => t.idempotency_key === task.idempotency_key,
      );
      assert.equal(same.length, 1);
    } finally {
      await new Promise((ok) => receiver.close(ok));
    }
  });

  test("a cancelled task resumes the node with TaskCancelledError", async () => {
    const app = graph("http://127.0.0.1:9/unused");
    const config = { configurable: { thread_id: "thread-cancel" } };
    await app.invoke({ orderId: "ord_8" }, config);
    const snapshot = await app.getState(config);
    const taskId = interruptTaskId(snapshot.tasks[0]?.interrupts[0]?.value);
    assert.ok(taskId);
    await api(server, "POST", `/api/tasks/${taskId}/cancel`, { reason: "duplicate" });
    const { json: poll } = await api(server, "GET", `/api/tasks/${taskId}/poll?timeout=1`);
    await assert.rejects(
      app.invoke(resumeCommand({ ...(poll as object), task_id: taskId } as never), config),
      TaskCancelledError,
    );
  });

  test("outside a node: ConfigurationError", async () => {
    await assert.rejects(
      awaitHumanInNode({
        task: "x",
        payloadSchema: z.object({}),
        payload: {},
        responseSchema: Decision,
        timeoutSeconds: 600,
      }),
      ConfigurationError,
    );
  });
});
