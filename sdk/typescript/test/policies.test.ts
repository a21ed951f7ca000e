/**
 * The policy features of issue 17 from Node, against a real `awaithumans serve`: a task
 * needing two approvals answered by two directory users through the API (`approvalsOf`),
 * a timed-out task returning its `onTimeout` default (`isDefault`), and decision receipts
 * checked on return (the server's key, another server's key, a key that is not one, and a
 * receipt altered in the database).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import {
  type Approval,
  approvalsOf,
  awaitHuman,
  ErrorCode,
  isDefault,
  RECEIPT_PUBLIC_KEY_ENV,
  ReceiptInvalidError,
  verifyReceipt,
} from "../src/index.js";
import { api, expire, PYTHON, startServer, type TestServer, taskIdByKey } from "./helpers.js";

process.env.AWAITHUMANS_QUIET = "1";
const PASSWORD = "correct horse battery staple";

const Refund = z.object({ orderId: z.string(), amountUsd: z.number() });
const Decision = z.object({ approved: z.boolean(), notes: z.string().nullable().default(null) });

let server: TestServer;
let seq = 0;

function ask(extra: Record<string, unknown> = {}) {
  seq += 1;
  const key = `ts-policy-${process.pid}-${seq}`;
  return {
    key,
    options: {
      task: `Refund $42.50 for ord_${seq}?`,
      payloadSchema: Refund,
      payload: { orderId: `ord_${seq}`, amountUsd: 42.5 },
      responseSchema: Decision,
      timeoutSeconds: 600,
      idempotencyKey: key,
      serverUrl: server.url,
      apiKey: server.adminToken,
      ...extra,
    },
  };
}

async function addUser(displayName: string, email: string): Promise<void> {
  const made = await api(server, "POST", "/api/admin/users", {
    display_name: displayName,
    email,
    password: PASSWORD,
    is_operator: false,
  });
  assert.equal(made.status, 201, JSON.stringify(made.json));
}

/** Log in as a directory user and answer the task as them (a vote, on an M-of-N task). */
async function vote(email: string, taskId: string, approved: boolean): Promise<void> {
  const login = await fetch(`${server.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(login.status, 200, await login.text());
  const cookie = login.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  const done = await fetch(`${server.url}/api/tasks/${taskId}/complete`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie },
    body: JSON.stringify({ response: { approved, notes: `from ${email}` } }),
  });
  assert.equal(done.status, 200, await done.text());
}

async function complete(taskId: string, response: Record<string, unknown>): Promise<void> {
  const done = await api(server, "POST", `/api/tasks/${taskId}/complete`, { response });
  assert.equal(done.status, 200, JSON.stringify(done.json));
}

async function serverKey(): Promise<string> {
  const resp = await fetch(`${server.url}/api/receipts/public-keys`);
  const body = (await resp.json()) as { keys: { public_key: string; current: boolean }[] };
  const current = body.keys.find((k) => k.current);
  assert.ok(current, JSON.stringify(body));
  return current.public_key;
}

function strangerKey(): string {
  const { publicKey } = generateKeyPairSync("ed25519");
  return Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url").toString(
    "base64url",
  );
}

function refused(reason: string, taskId?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ReceiptInvalidError, String(err));
    assert.equal(err.code, ErrorCode.RECEIPT_INVALID);
    assert.equal(err.reason, reason, err.message);
    if (taskId !== undefined) assert.equal(err.taskId, taskId);
    return true;
  };
}

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("several approvals: approvalsOf", () => {
  test("two approvers vote through the API; the deciding answer carries both votes", async () => {
    await addUser("Alice Approver", "alice@acme.com");
    await addUser("Bob Billing", "bob@acme.com");
    const { key, options } = ask({
      approvers: ["alice@acme.com", "bob@acme.com"],
      approvalsRequired: 2,
    });
    let settled = false;
    const waiting = awaitHuman(options).finally(() => {
      settled = true;
    });
    const taskId = await taskIdByKey(server, key);
    await vote("alice@acme.com", taskId, true);
    const task = await api(server, "GET", `/api/tasks/${taskId}`);
    assert.notEqual(task.json.status, "completed");
    assert.equal(settled, false);
    await vote("bob@acme.com", taskId, true);
    const answer = await waiting;
    assert.deepEqual(answer, { approved: true, notes: "from bob@acme.com" });
    assert.equal(isDefault(answer), false);
    const votes: Approval[] = approvalsOf(answer);
    assert.deepEqual(
      votes.map((v) => [v.email, v.approved, v.channel, v.displayName]),
      [
        ["alice@acme.com", true, "api", "Alice Approver"],
        ["bob@acme.com", true, "api", "Bob Billing"],
      ],
    );
    assert.deepEqual(votes[0]?.response, { approved: true, notes: "from alice@acme.com" });
    assert.ok(votes[0] && votes[1] && votes[0].at.getTime() <= votes[1].at.getTime());
    assert.ok(votes.every((v) => !Number.isNaN(v.at.getTime()) && typeof v.userId === "string"));
    // The votes are frozen, and a copy of the answer is a plain answer again.
    assert.throws(() => {
      (votes[0] as { approved: boolean }).approved = false;
    }, TypeError);
    assert.deepEqual(approvalsOf({ ...answer }), []);
    assert.deepEqual(approvalsOf(structuredClone(answer)), []);
  });

  test("a plain answer has no votes, and is not a default", async () => {
    const { key, options } = ask();
    const waiting = awaitHuman(options);
    await complete(await taskIdByKey(server, key), { approved: false });
    const answer = await waiting;
    assert.deepEqual(answer, { approved: false, notes: null });
    assert.deepEqual(approvalsOf(answer), []);
    assert.equal(isDefault(answer), false);
    assert.deepEqual([approvalsOf(null), approvalsOf(1), isDefault(undefined)], [[], [], false]);
  });
});

describe("onTimeout: isDefault", () => {
  test("a timed-out task returns the default the server applied, marked", async () => {
    const onTimeout = { approved: false, notes: "nobody answered" };
    const { key, options } = ask({ onTimeout });
    const waiting = awaitHuman(options);
    const taskId = await taskIdByKey(server, key);
    expire(server, taskId);
    const answer = await waiting;
    assert.deepEqual(answer, onTimeout);
    assert.equal(isDefault(answer), true);
    // Not the caller's own object, and a copy is a plain answer.
    assert.equal(isDefault(onTimeout), false);
    assert.equal(isDefault({ ...answer }), false);
    assert.equal(isDefault(JSON.parse(JSON.stringify(answer))), false);
    assert.deepEqual(approvalsOf(answer), []);
    const task = await api(server, "GET", `/api/tasks/${taskId}`);
    assert.equal(task.json.status, "timed_out");
    assert.equal(task.json.default_applied, true);
    // A rerun of the same call finds the timed-out task: the default again, marked again.
    const again = await awaitHuman(options);
    assert.deepEqual(again, onTimeout);
    assert.equal(isDefault(again), true);
  });
});

describe("decision receipts checked on return", () => {
  test("with the server's key (option or env var) the answer is returned", async () => {
    const publicKey = await serverKey();
    const first = ask({ receiptPublicKey: publicKey });
    const waiting = awaitHuman(first.options);
    const taskId = await taskIdByKey(server, first.key);
    await complete(taskId, { approved: true, notes: "ok" });
    assert.deepEqual(await waiting, { approved: true, notes: "ok" });
    // The receipt the server stored verifies offline too, and names this answer.
    const task = await api(server, "GET", `/api/tasks/${taskId}`);
    const verified = verifyReceipt(task.json.receipt as Record<string, unknown>, publicKey);
    assert.equal(verified.taskId, taskId);
    assert.equal(verified.channel, "api");

    process.env[RECEIPT_PUBLIC_KEY_ENV] = publicKey;
    try {
      const second = ask();
      const pending = awaitHuman(second.options);
      await complete(await taskIdByKey(server, second.key), { approved: false });
      assert.deepEqual(await pending, { approved: false, notes: null });
    } finally {
      delete process.env[RECEIPT_PUBLIC_KEY_ENV];
    }
  });

  test("another server's key: the answer arrives and is refused", async () => {
    const { key, options } = ask({ receiptPublicKey: strangerKey() });
    const waiting = awaitHuman(options);
    const taskId = await taskIdByKey(server, key);
    await complete(taskId, { approved: true });
    await assert.rejects(waiting, refused("unknown_key", taskId));
  });

  test("a key that is not one fails before any task is created", async () => {
    process.env[RECEIPT_PUBLIC_KEY_ENV] = "not-a-key";
    try {
      const { key, options } = ask();
      await assert.rejects(awaitHuman(options), refused("public_key"));
      const { json } = await api(server, "GET", "/api/tasks?limit=200");
      const keys = (json.items as { idempotency_key: string }[]).map((t) => t.idempotency_key);
      assert.ok(!keys.includes(key));
    } finally {
      delete process.env[RECEIPT_PUBLIC_KEY_ENV];
    }
  });

  test("a receipt altered in the database is refused on the rerun that returns it", async () => {
    const publicKey = await serverKey();
    const { key, options } = ask({ receiptPublicKey: publicKey });
    const waiting = awaitHuman(options);
    const taskId = await taskIdByKey(server, key);
    await complete(taskId, { approved: false });
    assert.deepEqual(await waiting, { approved: false, notes: null });
    // Someone with database access rewrites who answered in the stored receipt.
    tamperReceipt(server, taskId);
    await assert.rejects(awaitHuman(options), refused("signature", taskId));
    // Without a key, the same call returns the stored answer as before.
    assert.deepEqual(await awaitHuman({ ...options, receiptPublicKey: undefined }), {
      approved: false,
      notes: null,
    });
  });
});

function tamperReceipt(target: TestServer, taskId: string): void {
  const script = [
    "import json, sqlite3, sys",
    "db = sqlite3.connect(sys.argv[1])",
    "(text,) = db.execute('SELECT receipt FROM tasks WHERE id = ?', (sys.argv[2],)).fetchone()",
    "receipt = json.loads(text)",
    "receipt['answered_by'] = {'id': 'usr_boss', 'email': None, 'label': 'Boss'}",
    "n = db.execute('UPDATE tasks SET receipt = ? WHERE id = ?',",
    "    (json.dumps(receipt), sys.argv[2])).rowcount",
    "db.commit()",
    "assert n == 1, n",
  ].join("\n");
  execFileSync(PYTHON, ["-c", script, join(target.workdir, "server.db"), taskId]);
}
