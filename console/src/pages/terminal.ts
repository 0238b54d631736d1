// A terminal in the browser: xterm.js attached to a terminal session's websocket (ticket in the
// first frame, raw bytes both ways, resize follows the window). The session id is kept in this
// tab, so a reload within the coordinator's grace period reattaches and replays the screen.
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { api, ApiError } from "../api";
import { errorBox, h, link } from "../dom";

const SUBPROTOCOL = "berth.terminal.v1";

async function ticketFor(resourceId: string, size: { rows: number; cols: number }): Promise<any> {
  const key = `berth.console.terminal.${resourceId}`;
  const known = sessionStorage.getItem(key);
  if (known) {
    try {
      return await api("POST", `/terminal-sessions/${known}/tickets`, {});
    } catch (error) {
      if (!(error instanceof ApiError) || error.status >= 500) throw error;
      sessionStorage.removeItem(key); // closed or expired: open a new one
    }
  }
  const opened = await api("POST", "/terminal-sessions", { scope: { kind: "resource", resourceId }, ...size });
  sessionStorage.setItem(key, opened.sessionId);
  return opened;
}

export async function page(root: HTMLElement, [resourceId]: string[], signal: AbortSignal): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const state = h("p", { id: "terminal-state", role: "status" }, "connecting…");
  const host = h("div", { id: "terminal", class: "terminal", "aria-label": "Terminal" });
  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, resource.name), " / terminal"),
    h("h1", {}, `Terminal: ${resource.name}`),
    state,
    host,
  );
  // Font and colours match src/xterm-theme.css (the CSP keeps xterm from injecting its own).
  const term = new Terminal({ cursorBlink: false, fontSize: 14, fontFamily: "ui-monospace, \"DejaVu Sans Mono\", monospace", scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();
  (host as any).terminal = term; // for tests and the browser's console: term.buffer
  const opened = await ticketFor(resourceId, { rows: term.rows, cols: term.cols });
  const transport = opened.transport;
  const url = new URL(transport.path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, transport.subprotocol ?? SUBPROTOCOL);
  socket.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  const sendResize = () => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", rows: term.rows, cols: term.cols }));
  };
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", ticket: transport.ticket })));
  socket.addEventListener("message", (message) => {
    if (typeof message.data !== "string") {
      term.write(new Uint8Array(message.data));
      return;
    }
    const control = JSON.parse(message.data);
    if (control.type === "ready") {
      state.textContent = "connected";
      host.dataset.state = "connected";
      sendResize();
      term.focus();
    } else if (control.type === "exit") {
      state.textContent = `the shell exited (${control.exitCode ?? "?"})`;
      sessionStorage.removeItem(`berth.console.terminal.${resourceId}`);
    } else if (control.type === "error") {
      state.replaceChildren(errorBox(new Error(control.error?.error?.message ?? control.error?.message ?? "terminal error")));
    }
  });
  socket.addEventListener("close", () => {
    if (host.dataset.state === "connected") state.textContent = "disconnected (reload to reattach)";
    host.dataset.state = "closed";
  });
  term.onData((data) => socket.readyState === WebSocket.OPEN && socket.send(encoder.encode(data)));
  term.onResize(() => sendResize());
  const onWindowResize = () => fit.fit();
  window.addEventListener("resize", onWindowResize);
  signal.addEventListener("abort", () => {
    window.removeEventListener("resize", onWindowResize);
    socket.close(1000);
    term.dispose();
  });
}
