/**
 * A real awaithumans server for the tests (`awaithumans serve` from the repository's
 * Python venv), started on a free port with its own database, key, token and webhook
 * secret, as `awaithumans/testing/server.py` starts one; and small waiting helpers that
 * poll a condition until a deadline instead of sleeping and hoping.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's root (this file runs from sdk/typescript/build/test/). */
export const REPO = resolve(here, "../../../..");
export const PYTHON = join(REPO, ".venv/bin/python");
export const FIXTURES = join(REPO, "tests/conformance");

export interface TestServer {
  url: string;
  adminToken: string;
  webhookSecret: string;
  workdir: string;
  pid: number;
  logs(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => ok(port));
    });
  });
}

export async function startServer(): Promise<TestServer> {
  const workdir = mkdtempSync(join(tmpdir(), "awaithumans-ts-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const adminToken = `test-admin-${randomBytes(16).toString("hex")}`;
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const logPath = join(workdir, "server.log");
  const log = openSync(logPath, "a", 0o600);
  const proc: ChildProcess = spawn(
    PYTHON,
    ["-m", "awaithumans._cli_entry", "serve", "--port", String(port)],
    {
      cwd: workdir,
      stdio: ["ignore", log, log],
      env: {
        ...process.env,
        AWAITHUMANS_DATABASE_URL: `sqlite:///${join(workdir, "server.db")}`,
        AWAITHUMANS_PAYLOAD_KEY: randomBytes(32).toString("hex"),
        AWAITHUMANS_ADMIN_API_TOKEN: adminToken,
        AWAITHUMANS_PUBLIC_URL: url,
        AWAITHUMANS_WEBHOOK_SECRET: webhookSecret,
        // An expired deadline (see expire) is seen within 0.2 s, not a minute.
        AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS: "0.2",
        // The test's webhook receivers listen on this machine.
        AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS: "loopback",
      },
    },
  );
  const logs = () => {
    try {
      return readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((ok) => proc.once("exit", ok));
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(workdir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`server exited:\n${logs()}`);
        try {
          const resp = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
          return resp.status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, what: "the server to answer /api/health" },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, adminToken, webhookSecret, workdir, pid: proc.pid ?? 0, logs, stop };
}

/** Poll `check` every 20 ms until it returns a value other than false/undefined. */
export async function waitFor<T>(
  check: () => Promise<T | false | undefined> | T | false | undefined,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    const value = await check();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? "it"}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

/** An API call with the admin token; the parsed JSON body and the status. */
export async function api(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const resp = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      "content-type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return { status: resp.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The id of the task with this idempotency key, once the server has it. */
export async function taskIdByKey(server: TestServer, key: string): Promise<string> {
  return waitFor(
    async () => {
      const { json } = await api(server, "GET", "/api/tasks?limit=200");
      const items = json.items as { id: string; idempotency_key: string }[];
      return items.find((t) => t.idempotency_key === key)?.id;
    },
    { what: `a task with key ${key}` },
  );
}

/** Move a task's deadline into the past in the server's SQLite database (timeouts start at 60 s). */
export function expire(server: TestServer, taskId: string): void {
  const script = [
    "import sqlite3, sys",
    "from datetime import UTC, datetime, timedelta",
    "past = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None)",
    "db = sqlite3.connect(sys.argv[1])",
    "n = db.execute('UPDATE tasks SET timeout_at = ? WHERE id = ?',",
    "    (past.strftime('%Y-%m-%d %H:%M:%S.%f'), sys.argv[2])).rowcount",
    "db.commit()",
    "assert n == 1, n",
  ].join("\n");
  execFileSync(PYTHON, ["-c", script, join(server.workdir, "server.db"), taskId]);
}

/** Run a Python snippet in the repository's venv and parse what it prints as JSON. */
export function python<T>(script: string, ...args: string[]): T {
  const out = execFileSync(PYTHON, ["-c", script, ...args], { cwd: REPO, encoding: "utf8" });
  return JSON.parse(out) as T;
}
