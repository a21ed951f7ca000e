/**
 * The shared fixture `tests/conformance/forms.json` (written by the Python side): the
 * TypeScript rules give every form from its JSON schema, and `extractForm` gives the same
 * form from the Zod equivalent of each pydantic model.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import { extractForm, FALLBACK_KEY, formFromJsonSchema, humanize } from "../src/index.js";
import { parsePyJson, writtenAsFloat } from "../src/pyjson.js";
import { FIXTURES } from "./helpers.js";

interface Case {
  name: string;
  source: "pydantic" | "json_schema";
  json_schema: Record<string, unknown>;
  form: Record<string, unknown>;
}

const TEXT = readFileSync(join(FIXTURES, "forms.json"), "utf8");
// Read as Python reads it: a whole number written as a float (1.0) stays known as one.
const CASES = parsePyJson(TEXT) as Case[];

/** The Zod schema a TypeScript author writes for each pydantic model of make_forms.py. */
const ZOD: Record<string, z.ZodType> = {
  refund_decision: z
    .object({
      approved: z.boolean().describe("Send the money back?"),
      notes: z.string().nullable().default(null).describe("Anything the agent should know"),
    })
    .meta({ title: "RefundDecision" }),
  numbers: z
    .object({
      count: z.number().int().min(1).max(10),
      ratio: z.number().gt(0).lt(1),
      price: z.number().min(0).multipleOf(0.01),
      level: z.number().int().gt(3),
      below: z.number().int().lt(8),
      amount: z.number().default(1.5),
      spare: z.number().int().min(0).nullable().default(null),
    })
    .meta({ title: "Numbers" }),
  texts: z
    .object({
      name: z.string().min(2).max(50),
      essay: z.string().max(1000),
      summary: z.string().meta({ multiline: true }),
      code: z.string().meta({ placeholder: "ABC-123" }),
      headline: z.string().meta({ title: "Headline of the day" }),
      customerId: z.string(),
      short: z.string().max(500).meta({ widget: "short_text" }),
    })
    .meta({ title: "Texts" }),
  choices: z
    .object({
      verdict: z.enum(["approve", "reject"]),
      refund: z
        .enum(["full", "partial", "none"])
        .meta({ "x-enum-varnames": ["FULL_REFUND", "PARTIAL_REFUND", "NO_REFUND"] }),
      sizes: z
        .array(z.enum(["s", "m", "l"]))
        .min(1)
        .max(2),
      tags: z.array(z.string()),
      level: z.literal([1, 2, 3]).default(2),
      maybe: z.enum(["yes", "no"]).nullable().default(null),
    })
    .meta({ title: "Choices" }),
  temporal: z
    .object({ due: z.iso.date(), at: z.iso.datetime(), when: z.iso.time() })
    .meta({ title: "Temporal" }),
  defaults: z
    .object({
      priority: z.number().int().default(3),
      send_email: z.boolean().default(true),
      channel: z.enum(["email", "sms"]).default("email"),
      note: z.string().default("n/a"),
      labels: z.array(z.string()).default(["urgent"]),
    })
    .meta({ title: "Defaults" }),
  fallbacks: z
    .object({
      address: z.object({ street: z.string(), city: z.string() }).meta({ title: "Address" }),
      counts: z.record(z.string(), z.number().int()),
      either: z.union([z.string(), z.number().int()]),
      pair: z.tuple([z.number().int(), z.number().int()]),
    })
    .meta({ title: "Fallbacks" }),
};

describe("forms.json: JSON schema -> form", () => {
  test("the fixture has cases of both sources", () => {
    assert.ok(CASES.some((c) => c.source === "pydantic"));
    assert.ok(CASES.some((c) => c.source === "json_schema"));
  });
  for (const c of CASES) {
    test(c.name, () => {
      assert.deepStrictEqual(formFromJsonSchema(c.json_schema), c.form);
    });
  }
});

describe("forms.json: Zod schema -> form", () => {
  test("every pydantic case has its Zod equivalent here", () => {
    const names = CASES.filter((c) => c.source === "pydantic").map((c) => c.name);
    assert.deepStrictEqual(Object.keys(ZOD).sort(), names.sort());
  });
  for (const c of CASES.filter((c) => c.source === "pydantic")) {
    test(c.name, () => {
      const schema = ZOD[c.name];
      assert.ok(schema);
      assert.deepStrictEqual(extractForm(schema), c.form);
    });
  }
});

describe("extractForm on what only Zod says", () => {
  test("a type without JSON schema is a JSON field, not an exception", () => {
    const form = extractForm(z.object({ when: z.date(), big: z.bigint().optional() }));
    assert.deepStrictEqual(
      form.fields.map((f) => [f.name, f.kind, f.required, f.fallback_reason]),
      [
        ["when", "json", true, "type date has no JSON schema; edit the value as JSON"],
        ["big", "json", false, "type bigint has no JSON schema; edit the value as JSON"],
      ],
    );
    assert.equal(FALLBACK_KEY, "x-awaithumans-fallback");
  });

  test(".int() without bounds gets none (Zod's safe-integer range is not the author's)", () => {
    const [field] = extractForm(z.object({ n: z.number().int() })).fields;
    assert.deepStrictEqual(field, {
      name: "n",
      kind: "number",
      label: "N",
      required: true,
      integer: true,
    });
  });

  test("optional and nullable fields may be left empty", () => {
    const form = extractForm(
      z.object({ a: z.string().optional(), b: z.string().nullable(), c: z.string() }),
    );
    assert.deepStrictEqual(
      form.fields.map((f) => f.required),
      [false, false, true],
    );
  });

  test("humanize as Python's", () => {
    assert.equal(humanize("customer_id"), "Customer id");
    assert.equal(humanize("customerId"), "Customer id");
    assert.equal(humanize("HTTPServerError"), "Http server error");
    assert.equal(humanize("__"), "__");
  });
});

describe("whole numbers written as floats (Python's 1.0)", () => {
  test("parsePyJson gives the values JSON.parse gives", () => {
    assert.deepStrictEqual(parsePyJson(TEXT), JSON.parse(TEXT));
    const text = '{"a": [1.0, 1, 2e3, -0.5, 1E+2], "b": 3.0, "c": {"d": "1.0"}, "b ": 1, "e": 1}';
    const value = parsePyJson(text) as Record<string, unknown>;
    assert.deepStrictEqual(value, JSON.parse(text));
    assert.deepStrictEqual(
      [0, 1, 2, 3, 4].map((i) => writtenAsFloat(value.a, i)),
      [true, false, true, false, true],
    );
    assert.equal(writtenAsFloat(value, "b"), true);
    assert.equal(writtenAsFloat(value, "e"), false);
    assert.equal(writtenAsFloat(value.c, "d"), false);
  });

  test("a repeated key keeps the last value and its spelling, as json.loads", () => {
    const value = parsePyJson('{"k": 1.0, "k": 1}');
    assert.deepStrictEqual(value, { k: 1 });
    assert.equal(writtenAsFloat(value, "k"), false);
  });

  for (const bad of [
    "",
    "{",
    "[1,]",
    "01",
    "1.",
    '{"a" 1}',
    "tru",
    String.raw`"\x"`,
    "1 2",
    "NaN",
  ]) {
    test(`${JSON.stringify(bad)} is not JSON for either parser`, () => {
      assert.throws(() => JSON.parse(bad), SyntaxError);
      assert.throws(() => parsePyJson(bad), SyntaxError);
    });
  }

  test("the schema as JSON text gives Python's form; a parsed object cannot tell 1.0 from 1", () => {
    const c = CASES.find((x) => x.name === "whole_floats");
    assert.ok(c);
    const text = JSON.stringify(c.json_schema).replace('"const":1}', '"const":1.0}');
    assert.ok(text.includes('"const":1.0}'));
    const fromText = formFromJsonSchema(text).fields.find((f) => f.name === "const_float");
    assert.deepStrictEqual(fromText?.options, [{ value: 1, label: "1.0" }]);
    const fromObject = formFromJsonSchema(JSON.parse(text)).fields.find(
      (f) => f.name === "const_float",
    );
    assert.deepStrictEqual(fromObject?.options, [{ value: 1, label: "1" }]);
  });
});
