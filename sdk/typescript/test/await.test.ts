/**
 * `awaitHuman` against a real `awaithumans serve` (the Python server), answered, cancelled
 * and timed out through its API with the admin token.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  AuthenticationError,
  awaitHuman,
  deriveIdempotencyKey,
  ErrorCode,
  extractForm,
  InvalidRequestError,
  resolveServer,
  SchemaValidationError,
  ServerUnreachableError,
  TaskCancelledError,
  TaskClient,
  TaskTimeoutError,
  TimeoutRangeError,
  verifyWebhook,
} from "../src/index.js";
import {
  api,
  expire,
  freePort,
  startServer,
  type TestServer,
  taskIdByKey,
  waitFor,
} from "./helpers.js";

process.env.AWAITHUMANS_QUIET = "1";

const Refund = z.object({
  orderId: z.string().min(1),
  amountUsd: z.number().int().positive(),
  reason: z.string(),
});
const Decision = z
  .object({
    approved: z.boolean().describe("Send the money back?"),
    notes: z.string().nullable().default(null).describe("Anything the agent should know"),
  })
  .meta({ title: "RefundDecision" });

let server: TestServer;
let seq = 0;

function ask(key: string | undefined, extra: Record<string, unknown> = {}) {
  seq += 1;
  return {
    task: `Refund order ${key ?? `ord_${seq}`}?`,
    payloadSchema: Refund,
    payload: { orderId: `ord_${seq}`, amountUsd: 180, reason: "Arrived broken" },
    responseSchema: Decision,
    timeoutSeconds: 600,
    idempotencyKey: key,
    serverUrl: server.url,
    apiKey: server.adminToken,
    ...extra,
  };
}

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("awaitHuman against awaithumans serve", () => {
  test("created, answered through the API, returned parsed and typed", async () => {
    const waiting = awaitHuman(ask("ts-answer"));
    const id = await taskIdByKey(server, "ts-answer");
    const { json: task } = await api(server, "GET", `/api/tasks/${id}`);
    // What the server stored is what the SDK derived from the Zod schemas.
    assert.deepStrictEqual(task.form_definition, extractForm(Decision));
    assert.deepStrictEqual(task.payload, {
      orderId: task.payload && (task.payload as { orderId: string }).orderId,
      amountUsd: 180,
      reason: "Arrived broken",
    });
    const done = await api(server, "POST", `/api/tasks/${id}/complete`, {
      response: { approved: true },
    });
    assert.equal(done.status, 200);
    const decision = await waiting;
    // notes: the schema's default, applied by Zod when the answer is parsed.
    assert.deepStrictEqual(decision, { approved: true, notes: null });
  });

  test("the same key again returns the recorded answer at once (idempotent replay)", async () => {
    const options = ask("ts-replay");
    const first = awaitHuman(options);
    const id = await taskIdByKey(server, "ts-replay");
    await api(server, "POST", `/api/tasks/${id}/complete`, {
      response: { approved: false, notes: "not eligible" },
    });
    assert.deepStrictEqual(await first, { approved: false, notes: "not eligible" });
    const started = Date.now();
    const again = await awaitHuman(options);
    assert.deepStrictEqual(again, { approved: false, notes: "not eligible" });
    assert.ok(Date.now() - started < 5_000);
    const { json } = await api(server, "GET", "/api/tasks?limit=200");
    const same = (json.items as { idempotency_key: string }[]).filter(
      (t) => t.idempotency_key === "ts-replay",
    );
    assert.equal(same.length, 1);
  });

  test("without a key, the key derived from task and payload (as Python derives it)", async () => {
    const options = ask(undefined);
    const key = deriveIdempotencyKey(options.task, options.payload);
    const twice = [awaitHuman(options), awaitHuman(options)];
    const id = await taskIdByKey(server, key);
    await api(server, "POST", `/api/tasks/${id}/complete`, { response: { approved: true } });
    const answers = await Promise.all(twice);
    assert.deepStrictEqual(answers, [
      { approved: true, notes: null },
      { approved: true, notes: null },
    ]);
  });

  test("nobody answers in time: TaskTimeoutError, or the onTimeout default", async () => {
    const raising = awaitHuman(ask("ts-timeout"));
    const id = await taskIdByKey(server, "ts-timeout");
    expire(server, id);
    await assert.rejects(raising, (err: unknown) => {
      assert.ok(err instanceof TaskTimeoutError);
      assert.equal(err.code, ErrorCode.TIMEOUT_EXCEEDED);
      assert.equal(err.taskId, id);
      return true;
    });

    const defaulted = awaitHuman(
      ask("ts-timeout-default", { onTimeout: { approved: false, notes: "no answer" } }),
    );
    const other = await taskIdByKey(server, "ts-timeout-default");
    expire(server, other);
    assert.deepStrictEqual(await defaulted, { approved: false, notes: "no answer" });
    const { json } = await api(server, "GET", `/api/tasks/${other}`);
    assert.equal(json.status, "timed_out");
    assert.equal(json.default_applied, true);
  });

  test("cancelled: TaskCancelledError with the task's id", async () => {
    const waiting = awaitHuman(ask("ts-cancel"));
    const id = await taskIdByKey(server, "ts-cancel");
    const { status } = await api(server, "POST", `/api/tasks/${id}/cancel`, { reason: "dup" });
    assert.equal(status, 200);
    await assert.rejects(waiting, (err: unknown) => {
      assert.ok(err instanceof TaskCancelledError);
      assert.equal(err.code, ErrorCode.TASK_CANCELLED);
      assert.equal(err.taskId, id);
      return true;
    });
  });

  test("a bad payload is refused by Zod before anything is sent", async () => {
    const before = (await api(server, "GET", "/api/tasks?limit=200")).json.items as unknown[];
    const bad = { ...ask("ts-bad-payload"), payload: { orderId: "", amountUsd: -5, reason: 1 } };
    await assert.rejects(awaitHuman(bad as unknown as ReturnType<typeof ask>), (err: unknown) => {
      assert.ok(err instanceof SchemaValidationError);
      assert.equal(err.code, ErrorCode.SCHEMA_VALIDATION_FAILED);
      assert.equal(err.which, "payload");
      assert.deepStrictEqual(err.errors.map((e) => e.loc.join(".")).sort(), [
        "amountUsd",
        "orderId",
        "reason",
      ]);
      return true;
    });
    await assert.rejects(awaitHuman(ask("ts-range", { timeoutSeconds: 5 })), TimeoutRangeError);
    const afterwards = (await api(server, "GET", "/api/tasks?limit=200")).json.items as unknown[];
    assert.equal(afterwards.length, before.length);
  });

  test("the server's 4xx become typed errors with the server's code", async () => {
    await assert.rejects(
      awaitHuman(ask("ts-400", { notify: ["carrier-pigeon:roof"] })),
      (err: unknown) => {
        assert.ok(err instanceof InvalidRequestError);
        assert.equal(err.statusCode, 400);
        assert.equal(err.code, ErrorCode.INVALID_NOTIFY_ROUTE);
        return true;
      },
    );
    // Not checked by this SDK before sending: the server's body validation (422).
    await assert.rejects(awaitHuman(ask("ts-422", { approvalsRequired: 0 })), (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.statusCode, 422);
      assert.equal(err.code, ErrorCode.VALIDATION_ERROR);
      assert.ok(err.details.length > 0);
      return true;
    });
    await assert.rejects(awaitHuman(ask("ts-401", { apiKey: "wrong-token" })), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError);
      assert.equal(err.statusCode, 401);
      assert.ok(err.hint?.includes("AWAITHUMANS_API_KEY"));
      return true;
    });
  });

  test("the signal stops the wait; the task stays open and the same call resumes it", async () => {
    const controller = new AbortController();
    const options = ask("ts-abort");
    const waiting = awaitHuman({ ...options, signal: controller.signal });
    const id = await taskIdByKey(server, "ts-abort");
    controller.abort(new Error("stop waiting"));
    await assert.rejects(waiting, /stop waiting/);
    const { json } = await api(server, "GET", `/api/tasks/${id}`);
    assert.equal(json.status, "created");
    const resumed = awaitHuman(options);
    await api(server, "POST", `/api/tasks/${id}/complete`, { response: { approved: true } });
    assert.deepStrictEqual(await resumed, { approved: true, notes: null });
  });

  test("the server's signed webhook reaches a Node receiver and verifies", async () => {
    const received: { body: string; headers: IncomingMessage["headers"] }[] = [];
    const receiver: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ body: Buffer.concat(chunks).toString("utf8"), headers: req.headers });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    const port = await freePort();
    await new Promise<void>((ok) => receiver.listen(port, "127.0.0.1", ok));
    try {
      const waiting = awaitHuman(
        ask("ts-webhook", { callbackUrl: `http://127.0.0.1:${port}/hook` }),
      );
      const id = await taskIdByKey(server, "ts-webhook");
      await api(server, "POST", `/api/tasks/${id}/complete`, {
        response: { approved: true, notes: "ok" },
      });
      await waiting;
      const hit = await waitFor(() => received[0], { what: "the webhook" });
      const event = verifyWebhook(hit.body, hit.headers, server.webhookSecret, {
        responseSchema: Decision,
      });
      assert.equal(event.type, "task.completed");
      assert.equal(event.data.task_id, id);
      assert.equal(event.data.idempotency_key, "ts-webhook");
      assert.deepStrictEqual(event.data.response, { approved: true, notes: "ok" });
      assert.throws(() => verifyWebhook(hit.body, hit.headers, `whsec_${"A".repeat(44)}`));
    } finally {
      await new Promise((ok) => receiver.close(ok));
    }
  });
});

describe("reaching the server", () => {
  test("the dev file names the server and its token; a stale one is ignored", async () => {
    const home = mkdtempSync(join(tmpdir(), "awaithumans-home-"));
    const saved = { HOME: process.env.HOME, URL: process.env.AWAITHUMANS_URL };
    process.env.HOME = home;
    delete process.env.AWAITHUMANS_URL;
    try {
      const file = join(home, ".awaithumans-dev.json");
      writeFileSync(
        file,
        JSON.stringify({ url: server.url, admin_token: server.adminToken, pid: server.pid }),
      );
      assert.deepStrictEqual(resolveServer(), {
        url: server.url,
        apiKey: server.adminToken,
        source: "dev-file",
      });
      // Found by itself: no serverUrl, no apiKey.
      const options = { ...ask("ts-dev-file"), serverUrl: undefined, apiKey: undefined };
      const waiting = awaitHuman(options);
      const id = await taskIdByKey(server, "ts-dev-file");
      await api(server, "POST", `/api/tasks/${id}/complete`, { response: { approved: true } });
      assert.deepStrictEqual(await waiting, { approved: true, notes: null });

      writeFileSync(file, JSON.stringify({ url: server.url, admin_token: "x", pid: 2 ** 22 + 7 }));
      assert.equal(resolveServer().source, "default");
      assert.equal(resolveServer("http://h:1/", "k").source, "argument");
    } finally {
      process.env.HOME = saved.HOME;
      if (saved.URL !== undefined) process.env.AWAITHUMANS_URL = saved.URL;
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("no server: ServerUnreachableError after the connect window", async () => {
    process.env.AWAITHUMANS_CONNECT_TIMEOUT = "1";
    try {
      const port = await freePort();
      const started = Date.now();
      await assert.rejects(
        awaitHuman({ ...ask("ts-down"), serverUrl: `http://127.0.0.1:${port}` }),
        (err: unknown) =>
          err instanceof ServerUnreachableError && err.code === "SERVER_UNREACHABLE",
      );
      const took = Date.now() - started;
      assert.ok(took >= 900 && took < 5_000, `took ${took} ms`);
    } finally {
      delete process.env.AWAITHUMANS_CONNECT_TIMEOUT;
    }
  });

  test("503 with Retry-After is tried again no sooner than it says", async () => {
    // A stand-in front door: refuses the first create as a draining server does, then
    // hands the request on to the real server.
    const times: number[] = [];
    const front = createServer((req, res) => {
      times.push(Date.now());
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        if (times.length === 1) {
          res.writeHead(503, { "retry-after": "1" }).end('{"error":"SERVER_RESTARTING"}');
          return;
        }
        const upstream = await fetch(`${server.url}${req.url}`, {
          method: req.method,
          headers: {
            authorization: String(req.headers.authorization),
            "content-type": "application/json",
          },
          body: req.method === "POST" ? Buffer.concat(chunks) : undefined,
        });
        res.writeHead(upstream.status, { "content-type": "application/json" });
        res.end(Buffer.from(await upstream.arrayBuffer()));
      });
    });
    const port = await freePort();
    await new Promise<void>((ok) => front.listen(port, "127.0.0.1", ok));
    try {
      const client = new TaskClient(`http://127.0.0.1:${port}`, { apiKey: server.adminToken });
      const options = ask("ts-retry-after");
      const { buildRequest } = await import("../src/await.js");
      const { view, replayed } = await client.createTask(
        buildRequest(options),
        Date.now() + 10_000,
      );
      assert.equal(replayed, false);
      assert.match(view.id, /^tsk_/);
      assert.equal(times.length, 2);
      const [first = 0, second = 0] = times;
      assert.ok(second - first >= 950, `retried after ${second - first} ms`);
    } finally {
      await new Promise((ok) => front.close(ok));
    }
  });
});

describe("examples/slack-native-ts", () => {
  test("runs as its README says: asks with notify slack:@alice, prints the typed answer", async () => {
    // Compiled by `npm test` (tsconfig.examples.json); "awaithumans" resolves to this
    // package's dist/ by name, as an installed package would.
    const script = join(
      dirname(fileURLToPath(import.meta.url)),
      "../examples/examples/slack-native-ts/refund.js",
    );
    const order = `ord_${Date.now().toString(36)}`;
    const child = spawn(process.execPath, [script, "@alice", order], {
      env: {
        ...process.env,
        AWAITHUMANS_URL: server.url,
        AWAITHUMANS_API_KEY: server.adminToken,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((ok) => child.on("exit", ok));
    try {
      const id = await taskIdByKey(server, `slack-refund-ts:${order}`);
      const { json: task } = await api(server, "GET", `/api/tasks/${id}`);
      assert.deepStrictEqual(task.notify, ["slack:@alice"]);
      assert.deepStrictEqual(task.payload, {
        order_id: order,
        amount_usd: 180,
        reason: "Arrived broken",
      });
      await api(server, "POST", `/api/tasks/${id}/complete`, {
        response: { approved: true, notes: "Photo shows the crack" },
      });
      assert.equal(await exited, 0, stderr);
      assert.equal(stdout, `Refund for ${order} approved: Photo shows the crack\n`);
    } finally {
      child.kill();
    }
  });
});
