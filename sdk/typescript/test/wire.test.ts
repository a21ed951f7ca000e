/**
 * Values both SDKs compute bit for bit, against the Python-made fixture
 * `tests/conformance/wire.json`, and the error codes against the Python enum.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import {
  deriveIdempotencyKey,
  ErrorCode,
  InvalidSignatureError,
  type JsonObject,
  NotOurEventError,
  pythonJson,
  SchemaValidationError,
  signWebhook,
  verifyWebhook,
} from "../src/index.js";
import { nodeIdempotencyKey } from "../src/integrations/langgraph.js";
import { FIXTURES, python } from "./helpers.js";

interface Wire {
  idempotency_keys: { task: string; payload: JsonObject; key: string }[];
  langgraph_keys: { thread_id: string; checkpoint_ns: string; index: number; key: string }[];
  webhooks: { secret: string; id: string; timestamp: number; body: string; signature: string }[];
}

const WIRE = JSON.parse(readFileSync(join(FIXTURES, "wire.json"), "utf8")) as Wire;

describe("idempotency keys (wire.json)", () => {
  for (const c of WIRE.idempotency_keys) {
    test(c.task, () => {
      assert.equal(deriveIdempotencyKey(c.task, c.payload), c.key);
    });
  }

  test("Python's json.dumps spelling of what JSON carries", () => {
    assert.equal(pythonJson({ b: 1, a: [true, null, "é"] }), '{"a":[true,null,"\\u00e9"],"b":1}');
    assert.equal(pythonJson(1e16), "1e+16");
    assert.equal(pythonJson(1.5e-5), "1.5e-05");
    assert.equal(pythonJson(123456789012345.6), "123456789012345.6");
    assert.equal(pythonJson(0.0001), "0.0001");
    assert.equal(pythonJson(-2.25), "-2.25");
  });

  test("LangGraph node keys are the Python adapter's", () => {
    for (const c of WIRE.langgraph_keys) {
      assert.equal(nodeIdempotencyKey(c.thread_id, c.checkpoint_ns, c.index), c.key);
    }
  });
});

describe("error codes", () => {
  test("the same set as the Python ErrorCode enum", () => {
    const codes = python<string[]>(
      "import json; from awaithumans.core._codes import ErrorCode; print(json.dumps([c.value for c in ErrorCode]))",
    );
    assert.deepStrictEqual(Object.values(ErrorCode).sort(), [...codes].sort());
    for (const [name, value] of Object.entries(ErrorCode)) assert.equal(name, value);
  });
});

describe("verifyWebhook", () => {
  const [first, second] = WIRE.webhooks;
  assert.ok(first && second);
  const headersOf = (c: typeof first) => ({
    "webhook-id": c.id,
    "webhook-timestamp": String(c.timestamp),
    "webhook-signature": c.signature,
  });

  test("bodies signed by the Python standardwebhooks package verify", () => {
    for (const c of WIRE.webhooks) {
      const event = verifyWebhook(c.body, headersOf(c), c.secret, { now: c.timestamp + 10 });
      assert.equal(event.data.task_id, (JSON.parse(c.body) as { data: JsonObject }).data.task_id);
      assert.equal(signWebhook(c.secret, c.id, c.timestamp, c.body), c.signature);
    }
  });

  test("bytes, a Headers object and a rotated secret's extra signature", () => {
    const headers = new Headers(headersOf(first));
    headers.set(
      "webhook-signature",
      `v1,${Buffer.alloc(32).toString("base64")} ${first.signature}`,
    );
    const event = verifyWebhook(Buffer.from(first.body), headers, first.secret, {
      now: first.timestamp,
    });
    assert.equal(event.type, "task.completed");
  });

  test("refusals, each with its code", () => {
    const now = first.timestamp;
    const refused = (body: string, headers: Record<string, string>, secret = first.secret) =>
      assert.throws(
        () => verifyWebhook(body, headers, secret, { now }),
        (err: unknown) =>
          err instanceof InvalidSignatureError && err.code === ErrorCode.INVALID_SIGNATURE,
      );
    refused(`${first.body} `, headersOf(first)); // a body changed by one byte
    refused(first.body, headersOf(first), second.secret.replace("M", "N")); // another secret
    refused(first.body, { ...headersOf(first), "webhook-id": "evt_other" });
    refused(first.body, { ...headersOf(first), "webhook-signature": "v2,abc" });
    const { "webhook-id": _drop, ...noId } = headersOf(first);
    refused(first.body, noId);
    assert.throws(
      () => verifyWebhook(first.body, headersOf(first), first.secret, { now: now + 301 }),
      /outside the tolerance/,
    );
  });

  test("signed but not a task event; a response parsed by its schema", () => {
    const secret = first.secret;
    const signed = (body: string) => ({
      "webhook-id": "evt_x",
      "webhook-timestamp": "1000",
      "webhook-signature": signWebhook(secret, "evt_x", 1000, body),
    });
    const notOurs = '{"hello":"world"}';
    assert.throws(
      () => verifyWebhook(notOurs, signed(notOurs), secret, { now: 1000 }),
      NotOurEventError,
    );
    const body = JSON.stringify({
      type: "task.completed",
      timestamp: "t",
      data: { task_id: "tsk_1", status: "completed", response: { approved: "yes" } },
    });
    const schema = z.object({ approved: z.boolean() });
    assert.throws(
      () => verifyWebhook(body, signed(body), secret, { now: 1000, responseSchema: schema }),
      SchemaValidationError,
    );
  });
});
