/**
 * Where the server is and which token to present, in the Python SDK's order
 * (`awaithumans/core/_discovery.py`): the explicit argument, then `AWAITHUMANS_URL` /
 * `AWAITHUMANS_API_KEY`, then the file `awaithumans dev` writes (`~/.awaithumans-dev.json`,
 * ignored once the process that wrote it is gone), then `http://localhost:3001`.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const DEFAULT_URL = "http://localhost:3001";
export const DEV_FILE_NAME = ".awaithumans-dev.json";

export interface ServerTarget {
  url: string;
  apiKey: string | undefined;
  source: "argument" | "env" | "dev-file" | "default";
}

export function devFilePath(): string {
  return join(homedir(), DEV_FILE_NAME);
}

function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: another user's live process, which exists.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The running dev server's discovery record, or undefined if absent, stale or unreadable. */
export function readDevFile(path: string = devFilePath()): Record<string, unknown> | undefined {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return undefined;
  const record = data as Record<string, unknown>;
  const pid = record.pid;
  if (typeof pid !== "number" || !Number.isInteger(pid) || !pidAlive(pid)) return undefined;
  return record;
}

/** Resolve the server URL and token: argument > env > dev file > default. */
export function resolveServer(serverUrl?: string, apiKey?: string): ServerTarget {
  const envUrl = process.env.AWAITHUMANS_URL || undefined;
  const envKey =
    process.env.AWAITHUMANS_API_KEY || process.env.AWAITHUMANS_ADMIN_API_TOKEN || undefined;
  let url: string | undefined = serverUrl || envUrl;
  let source: ServerTarget["source"] = serverUrl ? "argument" : "env";
  let key = apiKey || envKey;
  if (url === undefined || key === undefined) {
    const dev = readDevFile();
    if (dev !== undefined) {
      const devUrl = dev.url;
      const devToken = dev.admin_token;
      // The dev file's token only belongs to the dev file's server.
      if (url === undefined && typeof devUrl === "string") {
        url = devUrl;
        source = "dev-file";
        if (key === undefined && typeof devToken === "string") key = devToken;
      } else if (key === undefined && typeof devToken === "string" && url === devUrl) {
        key = devToken;
      }
    }
  }
  if (url === undefined) {
    url = DEFAULT_URL;
    source = "default";
  }
  return { url: url.replace(/\/+$/, ""), apiKey: key, source };
}
