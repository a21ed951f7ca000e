/**
 * JSON text read as Python's `json.loads` reads it, as far as JavaScript can keep it: a
 * number written with a fraction or an exponent (`1.0`, `2e3`) is a float in Python and an
 * integer there, which JavaScript's one number type cannot show. The form rules care in
 * two places (Python's `str(1.0)` labels a choice `"1.0"`, and a float `minLength` is no
 * length), so {@link parsePyJson} parses as `JSON.parse` does and remembers, beside the
 * plain values it returns, which whole numbers were written as floats
 * ({@link writtenAsFloat}).
 */

// The containers (objects, arrays) holding a whole number written as a float, and under
// which keys / indices; weak, so the marks go with the values.
const floats = new WeakMap<object, Set<string | number>>();

/** Whether `container[key]` is a whole number that the JSON text wrote as a float. */
export function writtenAsFloat(container: unknown, key: string | number): boolean {
  if (typeof container !== "object" || container === null) return false;
  return floats.get(container)?.has(key) ?? false;
}

/** Give `copy` the marks of `original` (a shallow copy of an object keeps its members). */
export function copyFloatMarks<T extends object>(original: object, copy: T): T {
  const marks = floats.get(original);
  if (marks !== undefined) floats.set(copy, new Set(marks));
  return copy;
}

/**
 * Parse JSON text into the same values as `JSON.parse`, remembering which whole numbers
 * were written as floats (see {@link writtenAsFloat}).
 *
 * @throws SyntaxError The text is not JSON.
 */
export function parsePyJson(text: string): unknown {
  const parser = new Parser(text);
  parser.space();
  const value = parser.value();
  parser.space();
  if (parser.at < text.length) parser.fail("unexpected text after the value");
  return value;
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
// A string token; raw control characters are not JSON, so they end the match.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are the point
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;

class Parser {
  at = 0;
  constructor(private readonly text: string) {}

  fail(why: string): never {
    throw new SyntaxError(`Not JSON at position ${this.at}: ${why}`);
  }

  space(): void {
    SPACE.lastIndex = this.at;
    SPACE.exec(this.text);
    this.at = SPACE.lastIndex;
  }

  private match(pattern: RegExp): RegExpExecArray | null {
    pattern.lastIndex = this.at;
    const found = pattern.exec(this.text);
    if (found !== null) this.at = pattern.lastIndex;
    return found;
  }

  private literal(word: string, value: unknown): unknown {
    if (!this.text.startsWith(word, this.at)) this.fail(`expected ${word}`);
    this.at += word.length;
    return value;
  }

  /** A value, and whether it is a whole number written as a float. */
  entry(): [unknown, boolean] {
    const number = this.match(NUMBER);
    if (number !== null) {
      const value = Number(number[0]);
      const float = number[1] !== undefined || number[2] !== undefined;
      return [value, float && Number.isInteger(value)];
    }
    return [this.value(), false];
  }

  value(): unknown {
    const ch = this.text[this.at];
    if (ch === "{") return this.object();
    if (ch === "[") return this.array();
    if (ch === '"') return this.string();
    if (ch === "t") return this.literal("true", true);
    if (ch === "f") return this.literal("false", false);
    if (ch === "n") return this.literal("null", null);
    const number = this.match(NUMBER);
    if (number === null) this.fail("expected a value");
    return Number(number[0]);
  }

  private string(): string {
    const found = this.match(STRING);
    if (found === null) this.fail("a malformed string");
    return JSON.parse(found[0]) as string;
  }

  private object(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const marks = new Set<string>();
    this.at += 1;
    this.space();
    if (this.text[this.at] === "}") {
      this.at += 1;
      return out;
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail("expected a key");
      const key = this.string();
      this.space();
      if (this.text[this.at] !== ":") this.fail("expected ':'");
      this.at += 1;
      this.space();
      const [value, float] = this.entry();
      // A repeated key: the last one wins, as in both JSON.parse and json.loads.
      Object.defineProperty(out, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      if (float) marks.add(key);
      else marks.delete(key);
      this.space();
      const next = this.text[this.at];
      this.at += 1;
      if (next === "}") break;
      if (next !== ",") this.fail("expected ',' or '}'");
    }
    if (marks.size > 0) floats.set(out, marks);
    return out;
  }

  private array(): unknown[] {
    const out: unknown[] = [];
    const marks = new Set<number>();
    this.at += 1;
    this.space();
    if (this.text[this.at] === "]") {
      this.at += 1;
      return out;
    }
    for (;;) {
      this.space();
      const [value, float] = this.entry();
      if (float) marks.add(out.length);
      out.push(value);
      this.space();
      const next = this.text[this.at];
      this.at += 1;
      if (next === "]") break;
      if (next !== ",") this.fail("expected ',' or ']'");
    }
    if (marks.size > 0) floats.set(out, marks);
    return out;
  }
}
