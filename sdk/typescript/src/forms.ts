/**
 * The response form of a task, from a Zod object schema or a JSON schema.
 *
 * A port of the Python rules (`awaithumans/core/_forms_schema.py`, `form_from_json_schema`):
 * the same JSON schema gives the same `form_definition` on both sides, which the shared
 * fixture `tests/conformance/forms.json` checks in both test suites. A Zod schema is first
 * turned into a JSON schema by Zod's own converter (`z.toJSONSchema`), adjusted only where
 * Zod says something the Python side never sees (see {@link responseJsonSchema}).
 */
import { z } from "zod";
import { copyFloatMarks, parsePyJson, writtenAsFloat } from "./pyjson.js";
import { pythonFloat } from "./wire.js";

export const FORM_VERSION = 1;
/** Enum member names, as openapi-generator spells them; labels come from them. */
export const ENUM_NAMES_KEY = "x-enum-varnames";
/** Marks a field that has no JSON schema; it is edited as raw JSON. */
export const FALLBACK_KEY = "x-awaithumans-fallback";
/** Past this many characters a single-line input becomes unusable: a text area instead. */
export const LONG_TEXT_THRESHOLD = 200;
const MAX_HOPS = 16;

export type FieldKind =
  | "switch"
  | "single_select"
  | "multi_select"
  | "short_text"
  | "long_text"
  | "number"
  | "date"
  | "datetime"
  | "time"
  | "json";

export interface FormOption {
  value: string | number | boolean;
  label: string;
}

/** One input of a form; unset attributes are absent, as in the Python `exclude_none` dump. */
export interface FormField {
  name: string;
  kind: FieldKind;
  label: string;
  hint?: string;
  required: boolean;
  default?: unknown;
  options?: FormOption[];
  min?: number;
  max?: number;
  min_exclusive?: boolean;
  max_exclusive?: boolean;
  integer?: boolean;
  step?: number;
  min_length?: number;
  max_length?: number;
  multiline?: boolean;
  placeholder?: string;
  fallback_reason?: string;
}

export interface FormDefinition {
  version: number;
  title?: string;
  description?: string;
  fields: FormField[];
}

type Schema = Record<string, unknown>;
type Attrs = Partial<FormField> & { kind: FieldKind };

/**
 * The form a person fills in to answer with a value of `schema` (a Zod object schema).
 * Never throws for a field that cannot be rendered natively: it becomes a `json` field
 * with a `fallback_reason`.
 */
export function extractForm(schema: z.ZodType): FormDefinition {
  return formFromJsonSchema(responseJsonSchema(schema));
}

/**
 * The JSON schema of what a person may answer (Zod's input side: a field with a default
 * may be left out). Two adjustments: a type JSON schema cannot describe (a `Date`, a
 * `bigint`, a function) becomes `{}` marked with {@link FALLBACK_KEY} instead of failing
 * the call, and the ±(2^53-1) bounds Zod adds to every `.int()` are dropped, as they are
 * not the author's; `z.iso.time()` gets the `format: "time"` pydantic writes for a time.
 */
export function responseJsonSchema(schema: z.ZodType): Schema {
  return toJsonSchema(schema, "input");
}

/** The JSON schema of a payload (Zod's output side: what `parse` returned). */
export function payloadJsonSchema(schema: z.ZodType): Schema {
  return toJsonSchema(schema, "output");
}

function toJsonSchema(schema: z.ZodType, io: "input" | "output"): Schema {
  return z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
    override(ctx) {
      const json = ctx.jsonSchema as Schema;
      const def = (ctx.zodSchema as { _zod: { def: { type: string; format?: string } } })._zod.def;
      if (UNREPRESENTABLE.has(def.type)) {
        json[FALLBACK_KEY] = `type ${def.type} has no JSON schema; edit the value as JSON`;
      }
      // Zod leaves out `format: "time"` (its times have no UTC offset, which the format's
      // RFC 3339 wants); pydantic writes it for the same values, and the form needs it.
      if (def.type === "string" && def.format === "time" && json.format === undefined) {
        json.format = "time";
      }
      if (json.type === "integer") {
        if (json.minimum === Number.MIN_SAFE_INTEGER) delete json.minimum;
        if (json.maximum === Number.MAX_SAFE_INTEGER) delete json.maximum;
      }
    },
  }) as Schema;
}

const UNREPRESENTABLE = new Set([
  "bigint",
  "date",
  "symbol",
  "undefined",
  "void",
  "map",
  "set",
  "function",
  "custom",
  "transform",
  "nan",
]);

/**
 * Build a form definition from an object JSON schema: one field per top-level property,
 * in schema order. Accepts `$defs`/`$ref`, `anyOf`/`oneOf` with `null` for optionals,
 * `format`, `enum`, `const`, length and number bounds, and hand-written schemas.
 *
 * Given as JSON text, a whole number written as a float (`1.0`) is read as Python reads
 * it: a choice `1.0` is labelled `"1.0"`, and a `minLength` of `2.0` is no length. A
 * parsed object cannot tell `1.0` from `1` (JavaScript has one number type): both are `1`.
 */
export function formFromJsonSchema(schema: Schema | string): FormDefinition {
  if (typeof schema === "string") {
    const parsed = parsePyJson(schema);
    if (!isMapping(parsed)) throw new TypeError("The JSON schema is not a JSON object.");
    schema = parsed;
  }
  const root = deref(schema, schema);
  const properties = root.properties;
  const required = Array.isArray(root.required) ? (root.required as unknown[]) : [];
  const fields: FormField[] = [];
  if (isMapping(properties)) {
    for (const [name, prop] of Object.entries(properties)) {
      // A boolean subschema (`"x": true`) says nothing about the type: JSON fallback.
      const body = isMapping(prop) ? prop : {};
      fields.push(field(name, body, required.includes(name), schema));
    }
  }
  const form: FormDefinition = { version: FORM_VERSION, fields };
  if (typeof root.title === "string") form.title = formTitle(root.title);
  if (typeof root.description === "string") form.description = root.description;
  return form;
}

/** An identifier as a label: `"customer_id"` and `"customerId"` -> `"Customer id"`. */
export function humanize(name: string): string {
  const spaced = name.replace(/(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/g, " ");
  const words = stripChars(spaced, " _-").split(/[\s_-]+/);
  const text = words
    .filter((w) => w)
    .map((w) => w.toLowerCase())
    .join(" ");
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : name;
}

function stripChars(text: string, chars: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && chars.includes(text.charAt(start))) start++;
  while (end > start && chars.includes(text.charAt(end - 1))) end--;
  return text.slice(start, end);
}

function formTitle(title: string): string {
  // An identifier is a class name a generator filled in; anything else was written for people.
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(title) ? humanize(title) : title;
}

// What pydantic invents for an untitled field (`str.title()`): treated as "no title", so a
// model and its JSON schema give the same label.
function autoTitle(name: string): string {
  let out = "";
  let previousCased = false;
  for (const ch of name) {
    const cased = /[\p{Lu}\p{Ll}\p{Lt}]/u.test(ch);
    out += cased ? (previousCased ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    previousCased = cased;
  }
  return out.replaceAll("_", " ").trim();
}

const TEXT_KINDS: ReadonlySet<unknown> = new Set(["short_text", "long_text"]);
const TEMPORAL_FORMATS: Record<string, FieldKind> = {
  date: "date",
  "date-time": "datetime",
  time: "time",
};

function field(name: string, prop: Schema, listed: boolean, root: Schema): FormField {
  // Field-level facts (title, description, default) live on the property itself; a $ref
  // target's title and description describe the enum or model class, not this field.
  const [body, nullable] = unwrap(prop, root);
  const attrs = classify(body, root);
  const extra = (key: string): unknown => (key in prop ? prop[key] : body[key]);

  const widget = extra("widget");
  if (TEXT_KINDS.has(attrs.kind)) {
    const long = (attrs.max_length ?? 0) > LONG_TEXT_THRESHOLD || extra("multiline") === true;
    attrs.kind = long ? "long_text" : "short_text";
    if (TEXT_KINDS.has(widget)) attrs.kind = widget as FieldKind; // an explicit widget wins
    if (attrs.kind === "long_text") attrs.multiline = true;
  }
  const title = prop.title;
  const description = prop.description;
  const placeholder = extra("placeholder");
  const out: FormField = {
    name,
    kind: attrs.kind,
    label: typeof title === "string" && title !== autoTitle(name) ? title : humanize(name),
    // Optional (nullable) means "may be left empty", even when listed as required.
    required: listed && !nullable,
  };
  if (typeof description === "string") out.hint = description;
  const dflt = defaultOf(prop, attrs);
  if (dflt !== undefined && dflt !== null) out.default = dflt;
  if (typeof placeholder === "string") out.placeholder = placeholder;
  for (const [key, value] of Object.entries(attrs)) {
    if (key !== "kind" && value !== undefined && value !== null) {
      (out as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

function classify(body: Schema, root: Schema): Attrs {
  if (FALLBACK_KEY in body) return fallback(String(body[FALLBACK_KEY]));
  if ("const" in body || "enum" in body) return choices(body, "single_select");
  const kind = body.type;
  if (kind === "boolean") return { kind: "switch" };
  if (kind === "integer" || kind === "number") return numberAttrs(body, kind === "integer");
  if (kind === "string") {
    const temporal = TEMPORAL_FORMATS[String(body.format)];
    if (temporal !== undefined && Object.hasOwn(TEMPORAL_FORMATS, String(body.format))) {
      return { kind: temporal };
    }
    return {
      kind: "short_text", // field() picks short or long once it sees the extras
      min_length: count(body, "minLength"),
      max_length: count(body, "maxLength"),
    };
  }
  if (kind === "array") return arrayAttrs(body, root);
  if (kind === "object") {
    if (typeof body.title === "string" && isMapping(body.properties)) {
      return fallback(`nested model ${body.title} has no native widget; edit it as JSON`);
    }
    return fallback("mappings have no native widget; edit them as JSON");
  }
  if ((Array.isArray(body.anyOf) && body.anyOf.length === 0) || kind === "null") {
    return fallback("the field only accepts null; edit it as JSON");
  }
  if ("anyOf" in body || Array.isArray(kind)) {
    return fallback("a union of different types has no native widget; edit it as JSON");
  }
  if (kind === undefined || kind === null) {
    return fallback("the schema gives no type; edit the value as JSON");
  }
  return fallback(
    `type ${pyRepr(kind, writtenAsFloat(body, "type"))} has no native widget; edit it as JSON`,
  );
}

function fallback(reason: string): Attrs {
  return { kind: "json", fallback_reason: reason };
}

function choices(body: Schema, kind: "single_select" | "multi_select"): Attrs {
  const raw = "const" in body ? [body.const] : body.enum;
  if (!Array.isArray(raw)) return fallback("the enum lists no choices; edit the value as JSON");
  // Each value, and whether the JSON text wrote it as a float (Python labels 1.0 "1.0").
  const entries = raw
    .map((v, i): [unknown, boolean] => [
      v,
      "const" in body ? writtenAsFloat(body, "const") : writtenAsFloat(raw, i),
    ])
    .filter(([v]) => v !== null); // null means "optional"
  const values = entries.map(([v]) => v);
  if (
    values.length === 0 ||
    !values.every((v) => ["string", "number", "boolean"].includes(typeof v))
  ) {
    return fallback("choices that are not plain values have no native widget");
  }
  const names = body[ENUM_NAMES_KEY];
  const labels =
    Array.isArray(names) && names.length === values.length
      ? names.map((member, i) => humanize(pyStr(member, writtenAsFloat(names, i))))
      : entries.map(([v, float]) => pyStr(v, float)); // a literal, or unnamed enum members
  return {
    kind,
    options: values.map((value, i) => ({
      value: value as string | number | boolean,
      label: labels[i] ?? "",
    })),
  };
}

function arrayAttrs(body: Schema, root: Schema): Attrs {
  if ("prefixItems" in body) {
    return fallback("fixed-length tuples have no native widget; edit them as JSON");
  }
  const items = body.items;
  if (isMapping(items)) {
    const [item] = unwrap(items, root);
    if ("const" in item || "enum" in item) {
      const attrs = choices(item, "multi_select");
      if (attrs.kind === "multi_select") {
        attrs.min_length = count(body, "minItems");
        attrs.max_length = count(body, "maxItems");
      }
      return attrs;
    }
  }
  return fallback("lists of free-form values have no native widget; edit them as JSON");
}

function numberAttrs(body: Schema, integer: boolean): Attrs {
  const attrs: Attrs = { kind: "number", integer };
  const sides = [
    ["min", "minimum", "exclusiveMinimum"],
    ["max", "maximum", "exclusiveMaximum"],
  ] as const;
  for (const [side, inclusiveKey, exclusiveKey] of sides) {
    let bound = real(body[inclusiveKey]);
    let exclusive: unknown = body[exclusiveKey];
    if (exclusive === true) {
      // draft 4 spelling: a flag on the inclusive keyword
      exclusive = bound;
      bound = undefined;
    }
    const strict = real(exclusive);
    if (strict !== undefined) {
      if (integer) {
        // A whole number above 3 is at least 4: keep the bound inclusive for inputs.
        const inclusive = side === "min" ? Math.floor(strict) + 1 : Math.ceil(strict) - 1;
        bound = bound === undefined ? inclusive : tighter(side, bound, inclusive);
      } else if (bound === undefined || tighter(side, bound, strict) === strict) {
        bound = strict;
        attrs[`${side}_exclusive`] = true;
      }
    }
    attrs[side] = bound;
  }
  attrs.step = real(body.multipleOf);
  return attrs;
}

function tighter(side: "min" | "max", a: number, b: number): number {
  return side === "min" ? Math.max(a, b) : Math.min(a, b);
}

function real(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

// Python's isinstance(value, int): a whole number written as a float (2.0) is not a count.
function count(body: Schema, key: string): number | undefined {
  const value = body[key];
  if (writtenAsFloat(body, key)) return undefined;
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

function defaultOf(prop: Schema, attrs: Attrs): unknown {
  if (!("default" in prop)) return undefined;
  const value = prop.default;
  if (attrs.kind === "number" && typeof value === "string") {
    // A decimal default written as a string; a number input wants a number.
    const number = pyFloat(value);
    if (number === undefined || !Number.isFinite(number)) return undefined;
    return number;
  }
  try {
    if (!jsonSafe(value)) return undefined; // the form must stay JSON
  } catch {
    return undefined;
  }
  return value;
}

// Python's float() on a string: surrounding whitespace, optional sign, digits with an
// optional fraction and exponent, or inf/nan (which the caller refuses as non-finite).
function pyFloat(text: string): number | undefined {
  const t = text.trim().replaceAll(/(?<=\d)_(?=\d)/g, "");
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  if (/^[+-]?(inf|infinity|nan)$/i.test(t)) return Number.NaN;
  return undefined;
}

function jsonSafe(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(jsonSafe);
  if (typeof value === "object") {
    return Object.values(value as Schema).every(jsonSafe);
  }
  return false;
}

/** Follow `$ref` and strip `null` from unions: the schema, and whether null is allowed. */
function unwrap(start: Schema, root: Schema): [Schema, boolean] {
  let node = start;
  let nullable = false;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    node = deref(node, root);
    const branches = "anyOf" in node ? node.anyOf : node.oneOf;
    if (Array.isArray(branches) && !("type" in node)) {
      const live = branches.filter((b): b is Schema => isMapping(b) && b.type !== "null");
      nullable = nullable || live.length < branches.length;
      const picked = live.length === 1 ? live[0] : decimal(live);
      if (picked === undefined) return [{ anyOf: live }, nullable]; // a real union
      node = picked;
      continue;
    }
    const allOf = node.allOf;
    if (Array.isArray(allOf) && allOf.length === 1 && isMapping(allOf[0])) {
      node = allOf[0]; // a $ref with siblings, as older generators wrap it
      continue;
    }
    break;
  }
  const kind = node.type;
  if (Array.isArray(kind)) {
    // {"type": ["string", "null"]}
    const rest = kind.filter((k) => k !== "null");
    nullable = nullable || rest.length < kind.length;
    node = copyFloatMarks(node, { ...node, type: rest.length === 1 ? rest[0] : rest });
  }
  if ((Array.isArray(node.enum) && node.enum.includes(null)) || node.nullable === true) {
    nullable = true; // a literal with null, or the OpenAPI 3.0 spelling of optional
  }
  return [node, nullable];
}

// "A number, or a string holding one" (how pydantic describes Decimal): a number input.
function decimal(branches: Schema[]): Schema | undefined {
  if (branches.length !== 2) return undefined;
  const numbers = branches.filter((b) => b.type === "number");
  const strings = branches.filter(
    (b) => b.type === "string" && !("enum" in b || "const" in b || "format" in b),
  );
  return numbers.length === 1 && strings.length === 1 ? numbers[0] : undefined;
}

/** Follow local `$ref` pointers (`#/$defs/Name`); leave anything unresolvable as it is. */
function deref(start: Schema, root: Schema): Schema {
  let node = start;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const ref = node.$ref;
    if (typeof ref !== "string" || !ref.startsWith("#")) return node;
    let target: unknown = root;
    for (const raw of ref.slice(1).split("/").slice(1)) {
      const part = raw.replaceAll("~1", "/").replaceAll("~0", "~");
      target = isMapping(target) && Object.hasOwn(target, part) ? target[part] : undefined;
    }
    if (!isMapping(target)) return node;
    node = target;
  }
  return node;
}

function isMapping(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// Python's str() of a JSON value, for option labels (True, 1.5, None); `float`: the
// number was written as a float (1.0), which Python writes with its fraction.
function pyStr(value: unknown, float = false): string {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") {
    if (Number.isInteger(value) && !float) return BigInt(value).toString();
    return pythonFloat(value);
  }
  return String(value);
}

// Python's repr() of a JSON value, for the one message that quotes a schema's type.
function pyRepr(value: unknown, float = false): string {
  if (typeof value === "string") {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    const body = value.replaceAll("\\", "\\\\").replaceAll(quote, `\\${quote}`);
    return `${quote}${body}${quote}`;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return pyStr(value, float);
  }
  return JSON.stringify(value);
}
