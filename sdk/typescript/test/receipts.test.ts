/**
 * Decision receipts checked offline against `tests/conformance/receipts.json`: receipts the
 * Python server's signer made verify here byte for byte (the canonical form, the hashes,
 * Ed25519 through node:crypto), and the tampered ones are refused for the same reason the
 * Python `verify_receipt` gives.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  canonicalBytes,
  ErrorCode,
  keyIdOf,
  parsePublicKeys,
  ReceiptInvalidError,
  sha256Of,
  shownSha256,
  verifyReceipt,
} from "../src/index.js";
import { FIXTURES } from "./helpers.js";

type Receipt = Record<string, unknown>;
interface Fixture {
  public_key: string;
  key_id: string;
  public_key_forms: { hex: string; base64: string; pem: string };
  other_public_key: string;
  valid: {
    name: string;
    receipt: Receipt;
    response: unknown;
    shown: { payload: unknown; form_definition: unknown; response_schema: unknown };
  }[];
  canonical: { value: unknown; sha256: string }[];
  refused: { name: string; receipt: Receipt; reason: string }[];
}

const DATA = JSON.parse(readFileSync(join(FIXTURES, "receipts.json"), "utf8")) as Fixture;

function refusal(run: () => unknown, reason: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ReceiptInvalidError, String(err));
    assert.equal(err.code, ErrorCode.RECEIPT_INVALID);
    assert.equal(err.reason, reason, `${err.message} (${run.name})`);
    return true;
  };
}

describe("receipts signed by the Python server", () => {
  for (const c of DATA.valid) {
    test(`${c.name}: verifies with every key form, hashes agree`, () => {
      const forms = [DATA.public_key, ...Object.values(DATA.public_key_forms)];
      for (const key of forms) {
        const verified = verifyReceipt(c.receipt, key);
        assert.equal(verified.keyId, DATA.key_id);
        assert.equal(verified.taskId, c.receipt.task_id);
        assert.equal(verified.task, c.receipt.task);
        assert.equal(verified.status, "completed");
        assert.equal(verified.atText, "2026-12-06T16:30:05.123456Z");
        assert.equal(verified.at.toISOString(), "2026-12-06T16:30:05.123Z");
      }
      // As JSON text too, and with the key as raw bytes among others.
      const raw = Buffer.from(DATA.public_key, "base64url");
      const other = Buffer.from(DATA.other_public_key, "base64url");
      assert.equal(verifyReceipt(JSON.stringify(c.receipt), [other, raw]).keyId, DATA.key_id);
      assert.equal(sha256Of(c.response), c.receipt.response_sha256);
      const { payload, form_definition, response_schema } = c.shown;
      assert.equal(shownSha256(payload, form_definition, response_schema), c.receipt.shown_sha256);
    });

    test(`${c.name}: refused under another server's key`, () => {
      const run = () => verifyReceipt(c.receipt, DATA.other_public_key);
      assert.throws(run, refusal(run, "unknown_key"));
    });
  }

  for (const c of DATA.refused) {
    test(`refused: ${c.name} (${c.reason})`, () => {
      const run = () => verifyReceipt(c.receipt, DATA.public_key);
      assert.throws(run, refusal(run, c.reason));
    });
  }

  test("as JSON text, a version written 1.0 is malformed (json.loads makes it a float)", () => {
    const text = JSON.stringify(DATA.valid[0]?.receipt).replace('"version":1,', '"version":1.0,');
    assert.ok(text.includes('"version":1.0,'));
    const run = () => verifyReceipt(text, DATA.public_key);
    assert.throws(run, refusal(run, "malformed"));
    assert.throws(() => verifyReceipt("{not json", DATA.public_key), refusal(run, "malformed"));
    assert.throws(() => verifyReceipt("[1]", DATA.public_key), refusal(run, "malformed"));
  });

  test("every field changed here is refused as a bad signature", () => {
    const base = DATA.valid[0]?.receipt ?? {};
    const changes: Receipt[] = [
      { task_id: "task_other" },
      { channel: "api" },
      { status: "cancelled" },
      { at: "2026-12-06T16:30:05.123457Z" },
      { shown_sha256: "0".repeat(64) },
      { answered_by: { id: "u_alice", email: "alice@acme.com", label: "Alice " } },
    ];
    for (const change of changes) {
      const run = () => verifyReceipt({ ...base, ...change }, DATA.public_key);
      assert.throws(run, refusal(run, "signature"));
    }
  });
});

describe("the canonical form", () => {
  for (const c of DATA.canonical) {
    test(`sha256 of ${JSON.stringify(c.value).slice(0, 40)}`, () => {
      assert.equal(sha256Of(c.value), c.sha256);
    });
  }

  test("UTF-8 unescaped, whole numbers as integers, control characters escaped", () => {
    const text = canonicalBytes({ b: 1e20, a: "é\u0001\u007f", c: 2.5 }).toString("utf8");
    assert.equal(text, '{"a":"é\\u0001\u007f","b":100000000000000000000,"c":2.5}');
    // A lone surrogate is written as its own three bytes, as Python's "surrogatepass".
    assert.deepEqual([...canonicalBytes("\ud800")], [0x22, 0xed, 0xa0, 0x80, 0x22]);
  });
});

describe("public keys", () => {
  test("key id is the first 16 hex digits of the key's SHA-256", () => {
    assert.equal(keyIdOf(Buffer.from(DATA.public_key, "base64url")), DATA.key_id);
    const keys = parsePublicKeys(`${DATA.public_key}, ${DATA.other_public_key}`);
    assert.equal(keys.size, 2);
    assert.ok(keys.has(DATA.key_id));
  });

  for (const bad of ["not-a-key", "abcd", "a".repeat(63), ""]) {
    test(`${JSON.stringify(bad)} is refused as a public key`, () => {
      const run = () => parsePublicKeys(bad);
      assert.throws(run, refusal(run, "public_key"));
    });
  }

  test("a PEM key of another type is refused", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ec = publicKey.export({ type: "spki", format: "pem" }).toString();
    const run = () => parsePublicKeys(ec);
    assert.throws(run, refusal(run, "public_key"));
  });
});
