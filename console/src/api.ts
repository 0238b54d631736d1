// The one way pages talk to the coordinator: JSON calls and server-sent event streams, both
// carrying the session's headers (the cookie travels by itself, the CSRF header goes on every
// mutation); a 401 sends the person back to sign-in.
import { session } from "./session";

export interface Problem {
  field?: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public requestId: string | null,
    // A refused request's per-field problems (``details.problems``), for showing beside fields.
    public problems: Problem[] = [],
    // The envelope's whole ``details`` (e.g. a refused delete's ``blockers``).
    public details: Record<string, any> = {},
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorized: Listener[] = [];
export function onUnauthorized(listener: Listener): void {
  unauthorized.push(listener);
}

async function failure(response: Response, ownUnauthorized = false): Promise<ApiError> {
  let code = "http_" + response.status;
  let message = response.statusText;
  let requestId: string | null = null;
  let fields: Problem[] = [];
  let details: Record<string, any> = {};
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
    // Validation problems name the field and what is wrong with it: show them, not just "invalid".
    const problems = body.error?.details?.problems;
    if (Array.isArray(problems) && problems.length) {
      fields = problems;
      message += ": " + problems.map((p: any) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("; ");
    }
    requestId = body.requestId ?? null;
    details = body.error?.details ?? {};
  } catch {
    // not an error envelope: keep the status line
  }
  if (response.status === 401 && !ownUnauthorized) unauthorized.forEach((listener) => listener());
  return new ApiError(response.status, code, message, requestId, fields, details);
}

// ``ownUnauthorized``: the call checks a credential (the current password, a TOTP code), so its
// 401 means "wrong", not "signed out"; the page shows it instead of going back to sign-in.
export async function api<T = any>(method: string, path: string, body?: unknown, ownUnauthorized = false): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...session.headers(method) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) throw await failure(response, ownUnauthorized);
  return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
}

// A raw body (an uploaded archive) with the session's headers; the answer is JSON.
export async function upload<T = any>(path: string, body: Blob, headers: Record<string, string>): Promise<T> {
  const response = await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", ...session.headers("POST"), ...headers },
    body,
    credentials: "same-origin",
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

export interface StreamEvent {
  event: string;
  id: string | null;
  data: any;
}

// EventSource cannot send an Authorization header (token sign-in), so streams are read with fetch. The stream
// resumes after a dropped or closed connection from the last event id it saw (Last-Event-ID), so
// no line is lost or repeated; it ends on an ``end`` event (unless ``resumeAfter`` says that end
// is worth resuming after, e.g. the agent's link dropped) or when ``signal`` aborts.
export async function stream(
  path: string,
  onEvent: (event: StreamEvent) => void,
  signal: AbortSignal,
  onState: (state: "open" | "reconnecting" | "ended") => void = () => {},
  resumeAfter: (end: any) => boolean = () => false,
): Promise<void> {
  let lastId: string | null = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...session.headers("GET") };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers, signal, credentials: "same-origin" });
      if (!response.ok || !response.body) throw await failure(response);
      onState("open");
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let ended = false;
      let name = "message";
      let id: string | null = null;
      let data = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            if (id !== null) lastId = id;
            const parsed = data ? JSON.parse(data) : null;
            if (name === "end") ended = !resumeAfter(parsed);
            else if (parsed !== null) onEvent({ event: name, id, data: parsed });
            name = "message";
            id = null;
            data = "";
          } else if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
      }
      if (ended) {
        onState("ended");
        return;
      }
      throw new Error("the stream closed before its end");
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) throw error;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  }
}
