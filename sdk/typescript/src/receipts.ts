/**
 * Decision receipts, checked offline: `verifyReceipt(receipt, publicKeys)`.
 *
 * A receipt is the server's signed statement of one final answer: which task, a hash of
 * what the person was shown (payload, form and response schema) and of the answer, who
 * answered, through which channel and when. The server signs it with an Ed25519 key; the
 * public key (`GET /api/receipts/public-keys`, `awaithumans receipt-key`) checks it here,
 * without the server.
 *
 * The canonical form is the Python SDK's (`awaithumans/core/_receipts.py`) byte for byte:
 * sorted keys, no spaces, UTF-8 (no `\u` escapes beyond control characters), and a number
 * with no fraction written as an integer. `tests/conformance/receipts.json` holds receipts
 * the Python server signed, which both SDKs check.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { ReceiptInvalidError } from "./errors.js";
import { parsePyJson, writtenAsFloat } from "./pyjson.js";
import { compareCodePoints, pythonNumber } from "./wire.js";

export const RECEIPT_VERSION = 1;
export const RECEIPT_ALGORITHM = "Ed25519";
/** The environment variable `awaitHuman` reads the server's public key(s) from. */
export const RECEIPT_PUBLIC_KEY_ENV = "AWAITHUMANS_RECEIPT_PUBLIC_KEY";

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const B64 = /^[A-Za-z0-9_\-+/]+=*$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
// An ISO 8601 time with a zone, as the server writes `at` (`...T12:00:00.000000Z`).
const ISO_WITH_ZONE =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}(:?\d{2})?)$/i;

// Every field a version-1 receipt has, and the JSON type each must be.
const FIELDS: ReadonlyArray<[string, "int" | "string" | "object"]> = [
  ["version", "int"],
  ["task_id", "string"],
  ["task", "string"],
  ["shown_sha256", "string"],
  ["response_sha256", "string"],
  ["answered_by", "object"],
  ["channel", "string"],
  ["status", "string"],
  ["at", "string"],
  ["key_id", "string"],
  ["algorithm", "string"],
  ["signature", "string"],
];

/** One key or several: raw 32 bytes, base64 / base64url, 64 hex digits or PEM. */
export type ReceiptPublicKeys = string | Uint8Array | ReadonlyArray<string | Uint8Array>;

/** A receipt whose signature checked out: what it proves. */
export interface VerifiedReceipt {
  taskId: string;
  /** The task's title, as the person saw it. */
  task: string;
  /** The final status (`completed`). */
  status: string;
  /** The authenticated person (or credential) who answered. */
  answeredById: string | null;
  answeredByEmail: string | null;
  answeredByLabel: string | null;
  /** Where they answered: `dashboard`, `slack`, `email` or `api`. */
  channel: string;
  /** When the answer became final. */
  at: Date;
  /** `at` as signed (microseconds, which a `Date` drops). */
  atText: string;
  /** Hash of the payload, form and response schema they were shown. */
  shownSha256: string;
  /** Hash of the final answer. */
  responseSha256: string;
  /** Which server key signed it. */
  keyId: string;
}

/**
 * The canonical JSON text of `value`, as the Python side writes it before hashing or
 * signing: `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
 * after writing every whole number as an integer.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${value} is not JSON (allow_nan=False)`);
    // A whole number is an integer whatever its size (PostgreSQL hands 1e20 back as
    // 100000000000000000000): BigInt writes every digit of the double's exact value.
    return Number.isInteger(value) ? BigInt(value).toString() : pythonNumber(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return jsonString(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => compareCodePoints(a, b));
    return `{${entries.map(([k, v]) => `${jsonString(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  throw new TypeError(`${typeof value} is not JSON`);
}

/** What is hashed and signed: {@link canonicalJson} as UTF-8 (a lone surrogate as its unit). */
export function canonicalBytes(value: unknown): Buffer {
  return utf8SurrogatePass(canonicalJson(value));
}

/** The hex SHA-256 of `value`'s canonical form. */
export function sha256Of(value: unknown): string {
  return createHash("sha256").update(canonicalBytes(value)).digest("hex");
}

/** The hash of what a person was shown: the payload, the form and the response schema. */
export function shownSha256(
  payload: unknown,
  formDefinition: unknown,
  responseSchema: unknown,
): string {
  return sha256Of({
    payload: payload ?? null,
    form_definition: formDefinition ?? null,
    response_schema: responseSchema ?? null,
  });
}

/** What the signature covers: every field but the signature, canonically. */
export function signedBytes(receipt: Record<string, unknown>): Buffer {
  const { signature: _signature, ...rest } = receipt;
  return canonicalBytes(rest);
}

/** A receipt key's public name: the first 16 hex digits of the SHA-256 of its 32 bytes. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

/**
 * The raw 32-byte public keys given, by key id.
 *
 * @param keys One key or several: raw 32 bytes; base64 (either alphabet, padded or not)
 *   or 64 hex digits; a PEM `PUBLIC KEY` block; a string of several separated by commas
 *   or whitespace (the current key and previous ones, while rotating).
 * @throws ReceiptInvalidError `reason: "public_key"`, naming the one that is not a key.
 */
export function parsePublicKeys(keys: ReceiptPublicKeys): Map<string, Buffer> {
  const items: (string | Uint8Array)[] = [];
  const list = typeof keys === "string" || keys instanceof Uint8Array ? [keys] : keys;
  for (const key of list) {
    if (typeof key === "string") items.push(...splitKeys(key));
    else items.push(key);
  }
  const found = new Map<string, Buffer>();
  for (const item of items) {
    const raw = oneKey(item);
    found.set(keyIdOf(raw), raw);
  }
  if (found.size === 0) {
    throw new ReceiptInvalidError("No receipt public key was given.", { reason: "public_key" });
  }
  return found;
}

/**
 * Check a decision receipt's signature, offline, and say what it proves.
 *
 * @param receipt The receipt (`task.receipt` from the API), as an object or JSON text.
 * @param publicKeys The server's public key, or several (the receipt's `key_id` picks one);
 *   see {@link parsePublicKeys} for the accepted forms.
 * @throws ReceiptInvalidError The receipt is malformed (`reason: "malformed"`), names a key
 *   not given (`"unknown_key"`), its signature does not match (`"signature"`), or a key
 *   given is not one (`"public_key"`).
 */
export function verifyReceipt(
  receipt: Record<string, unknown> | string | Uint8Array,
  publicKeys: ReceiptPublicKeys,
): VerifiedReceipt {
  const found = receiptObject(receipt);
  const { taskId, signature, at } = checkFields(found);
  const keys = parsePublicKeys(publicKeys);
  const keyId = found.key_id as string;
  const raw = keys.get(keyId);
  if (raw === undefined) {
    throw new ReceiptInvalidError(
      `The receipt was signed with key ${keyId}, which is not among the keys given (${[...keys.keys()].sort().join(", ")}).`,
      { reason: "unknown_key", taskId },
    );
  }
  if (!verify(null, signedBytes(found), ed25519Key(raw), signature)) {
    throw new ReceiptInvalidError(
      `The receipt's signature does not match its content (key ${keyId}): it was altered after signing, or not signed by this server.`,
      { reason: "signature", taskId },
    );
  }
  const by = found.answered_by as Record<string, unknown>;
  const text = (name: string): string | null => {
    const value = by[name];
    return typeof value === "string" ? value : null;
  };
  return {
    taskId: found.task_id as string,
    task: found.task as string,
    status: found.status as string,
    answeredById: text("id"),
    answeredByEmail: text("email"),
    answeredByLabel: text("label"),
    channel: found.channel as string,
    at,
    atText: found.at as string,
    shownSha256: found.shown_sha256 as string,
    responseSha256: found.response_sha256 as string,
    keyId,
  };
}

/**
 * What `awaitHuman` checks before it returns an answer: a receipt came, it is signed by
 * the server, and it is for this task, this answer and (`shown`, the hash of what the call
 * sent) this question.
 *
 * @throws ReceiptInvalidError As {@link verifyReceipt}, or `reason: "missing"` / `"mismatch"`.
 */
export function checkDecision(
  receipt: Record<string, unknown> | null | undefined,
  publicKeys: ReceiptPublicKeys,
  expected: { taskId: string; response: unknown; shown?: string | undefined },
): VerifiedReceipt {
  const { taskId } = expected;
  if (receipt === null || receipt === undefined) {
    throw new ReceiptInvalidError(
      `Task ${taskId} was answered without a decision receipt, and a receipt public key is configured (${RECEIPT_PUBLIC_KEY_ENV}): the server does not sign its answers (an older version?).`,
      { reason: "missing", taskId },
    );
  }
  const verified = verifyReceipt(receipt, publicKeys);
  const problems: string[] = [];
  if (verified.taskId !== taskId) problems.push(`it is for task ${verified.taskId}`);
  if (verified.responseSha256 !== sha256Of(expected.response ?? null)) {
    problems.push("its answer hash is not that of the answer returned");
  }
  if (expected.shown !== undefined && verified.shownSha256 !== expected.shown) {
    problems.push("what the person was shown is not what this call sent");
  }
  if (problems.length > 0) {
    throw new ReceiptInvalidError(
      `The receipt of task ${taskId} is signed but does not match: ${problems.join("; ")}.`,
      { reason: "mismatch", taskId },
    );
  }
  return verified;
}

/** The keys `awaitHuman` checks receipts with: the option, else the env var; none: no check. */
export function configuredReceiptKeys(option?: ReceiptPublicKeys): Buffer[] | undefined {
  const given = option ?? process.env[RECEIPT_PUBLIC_KEY_ENV]?.trim();
  if (given === undefined || given === "") return undefined;
  return [...parsePublicKeys(given).values()];
}

function receiptObject(
  receipt: Record<string, unknown> | string | Uint8Array,
): Record<string, unknown> {
  let value: unknown = receipt;
  if (typeof receipt === "string" || receipt instanceof Uint8Array) {
    const text = typeof receipt === "string" ? receipt : Buffer.from(receipt).toString("utf8");
    try {
      // As json.loads reads it: a version written 1.0 is a float, and refused as Python does.
      value = parsePyJson(text);
    } catch (err) {
      throw new ReceiptInvalidError(`The receipt is not JSON (${(err as Error).message}).`, {
        reason: "malformed",
      });
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ReceiptInvalidError("The receipt is not a JSON object.", { reason: "malformed" });
  }
  return value as Record<string, unknown>;
}

function checkFields(receipt: Record<string, unknown>): {
  taskId: string | undefined;
  signature: Buffer;
  at: Date;
} {
  const taskId = typeof receipt.task_id === "string" ? receipt.task_id : undefined;
  const malformed = (why: string) =>
    new ReceiptInvalidError(`The receipt is malformed: ${why}.`, { reason: "malformed", taskId });
  if (receipt.version !== RECEIPT_VERSION) {
    throw malformed(
      `version ${JSON.stringify(receipt.version)}, this SDK reads ${RECEIPT_VERSION}`,
    );
  }
  for (const [name, kind] of FIELDS) {
    const value = receipt[name];
    const ok =
      kind === "int"
        ? Number.isInteger(value) && !writtenAsFloat(receipt, name)
        : kind === "string"
          ? typeof value === "string"
          : typeof value === "object" && value !== null && !Array.isArray(value);
    if (!ok)
      throw malformed(
        `'${name}' is missing or not a ${kind === "object" ? "dict" : kind === "int" ? "int" : "str"}`,
      );
  }
  const known = new Set(FIELDS.map(([name]) => name));
  const extra = Object.keys(receipt).filter((name) => !known.has(name));
  if (extra.length > 0) throw malformed(`unknown field(s) ${JSON.stringify(extra.sort())}`);
  if (receipt.algorithm !== RECEIPT_ALGORITHM) {
    throw malformed(`algorithm ${JSON.stringify(receipt.algorithm)}, not ${RECEIPT_ALGORITHM}`);
  }
  for (const name of ["shown_sha256", "response_sha256"]) {
    if (!SHA256_HEX.test(receipt[name] as string))
      throw malformed(`'${name}' is not a SHA-256 in hex`);
  }
  const signature = b64decode(receipt.signature as string);
  if (signature === undefined || signature.length !== SIGNATURE_BYTES) {
    throw malformed("the signature is not 64 bytes of base64url");
  }
  const atText = receipt.at as string;
  const at = new Date(atText);
  if (!ISO_WITH_ZONE.test(atText) || Number.isNaN(at.getTime())) {
    throw malformed(`'at' is not an ISO time with a time zone: ${JSON.stringify(atText)}`);
  }
  return { taskId, signature, at };
}

// base64 in either alphabet, padded or not, as Python's urlsafe_b64decode reads it after
// normalising; undefined when it is not base64 at all.
function b64decode(text: string): Buffer | undefined {
  if (!B64.test(text)) return undefined;
  const normalized = text.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
  if (normalized.length % 4 === 1 || /[=]/.test(normalized)) return undefined;
  return Buffer.from(normalized, "base64url");
}

function splitKeys(text: string): string[] {
  const end = "-----END PUBLIC KEY-----";
  if (text.includes("-----BEGIN")) {
    return text
      .split(end)
      .filter((block) => block.trim() !== "")
      .map((block) => block + end);
  }
  return text.split(/[\s,]+/).filter((part) => part !== "");
}

function oneKey(item: string | Uint8Array): Buffer {
  if (typeof item !== "string") {
    if (item.length === PUBLIC_KEY_BYTES) return Buffer.from(item);
    throw new ReceiptInvalidError(
      `A receipt public key is ${PUBLIC_KEY_BYTES} raw bytes, not ${item.length}.`,
      { reason: "public_key" },
    );
  }
  const text = item.trim();
  if (text.startsWith("-----BEGIN")) return pemKey(text);
  let raw: Buffer | undefined;
  if (HEX_KEY.test(text)) raw = Buffer.from(text, "hex");
  else raw = b64decode(text);
  if (raw === undefined || raw.length !== PUBLIC_KEY_BYTES) {
    const shown = text.length <= 60 ? text : `${text.slice(0, 57)}...`;
    throw new ReceiptInvalidError(
      `${JSON.stringify(shown)} is not an Ed25519 public key: expected 32 bytes as base64url (43 characters, what \`awaithumans receipt-key\` prints), 64 hex digits or PEM.`,
      { reason: "public_key" },
    );
  }
  return raw;
}

function pemKey(text: string): Buffer {
  let key: KeyObject | undefined;
  try {
    key = createPublicKey(text);
  } catch {
    key = undefined;
  }
  if (key?.asymmetricKeyType !== "ed25519") {
    throw new ReceiptInvalidError("The PEM block is not an Ed25519 public key.", {
      reason: "public_key",
    });
  }
  const jwk = key.export({ format: "jwk" });
  return Buffer.from(jwk.x ?? "", "base64url");
}

function ed25519Key(raw: Buffer): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

// ensure_ascii=False: only the quote, the backslash and control characters are escaped.
function jsonString(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are the point
  const escaped = text.replace(/["\\\u0000-\u001f]/g, (ch) => {
    const short = SHORT_ESCAPES[ch];
    return short ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return `"${escaped}"`;
}

// UTF-8, with a lone surrogate written as the three bytes of its code unit (Python's
// "surrogatepass") where Buffer.from would write U+FFFD.
function utf8SurrogatePass(text: string): Buffer {
  if (!/[\uD800-\uDFFF]/u.test(text)) return Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  for (const ch of text) {
    const unit = ch.length === 1 ? ch.charCodeAt(0) : -1;
    if (unit >= 0xd800 && unit <= 0xdfff) {
      parts.push(
        Buffer.from([0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]),
      );
    } else {
      parts.push(Buffer.from(ch, "utf8"));
    }
  }
  return Buffer.concat(parts);
}
