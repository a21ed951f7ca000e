/**
 * `onTimeout`: what a call returns when nobody answered in time, and how to tell.
 *
 * With `onTimeout` given, a timed-out `awaitHuman` returns that answer instead of throwing
 * `TaskTimeoutError`, and {@link isDefault} says it is the default rather than a person's
 * answer. As in the Python SDK (`is_default`), the mark is on the returned object itself,
 * so its type stays exactly the response schema's: a copy (`structuredClone`, a spread, a
 * round trip through JSON) is a plain answer again.
 */

// The answers returned as defaults; weak, so marking keeps nothing alive.
const marked = new WeakSet<object>();

/**
 * Whether `answer` is the `onTimeout` default a call returned after a timeout.
 * False for a person's answer, and for anything the call did not return itself.
 */
export function isDefault(answer: unknown): boolean {
  return isMarkable(answer) && marked.has(answer);
}

/** Record `answer` as a default (see {@link isDefault}) and return it. */
export function markDefault<T>(answer: T): T {
  // A primitive answer (a response schema that is not an object) cannot carry a mark.
  if (isMarkable(answer)) marked.add(answer);
  return answer;
}

function isMarkable(value: unknown): value is object {
  return (typeof value === "object" && value !== null) || typeof value === "function";
}
