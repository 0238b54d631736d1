// A virtualised, bounded log list: at most MAX_LINES are kept (oldest dropped first) and only
// the rows in view are in the DOM, redrawn at most once per animation frame, so a fast stream
// costs memory in proportion to MAX_LINES and DOM work in proportion to the window's height.
import { h } from "./dom";

export const MAX_LINES = 10_000;
const ROW_PX = 18;
const OVERSCAN = 10;

interface Line {
  text: string;
  stream: string;
  time: string;
  gap?: boolean;
}

export class LogView {
  readonly element: HTMLElement;
  paused = false;
  lines: Line[] = [];
  private shown: Line[] = [];
  private text = "";
  private streamName = "";
  private readonly spacer: HTMLElement;
  private readonly rows: HTMLElement;
  private pending = false;
  private stick = true;
  received = 0;

  constructor() {
    this.rows = h("div", { class: "log-rows", role: "list" });
    this.spacer = h("div", { class: "log-spacer" }, this.rows);
    this.element = h("div", { class: "log-view", id: "log-view", tabindex: 0, role: "log", "aria-label": "Runtime log lines" }, this.spacer);
    (this.element as any).logView = this; // for tests and the browser's console
    this.element.addEventListener("scroll", () => {
      const bottom = this.element.scrollHeight - this.element.clientHeight - this.element.scrollTop;
      this.stick = bottom < ROW_PX * 2;
      this.schedule();
    });
  }

  add(logs: any[]): void {
    for (const log of logs) this.push({ text: log.message, stream: log.stream, time: log.timestamp });
    this.received += logs.length;
    this.element.dataset.received = String(this.received);
    if (!this.paused) this.schedule();
  }

  gap(data: any): void {
    this.push({ text: `… ${data.dropped ?? "some"} lines dropped (the reader fell behind) …`, stream: "gap", time: "", gap: true });
    if (!this.paused) this.schedule();
  }

  // Forget every line (a jump to another time starts the list again).
  clear(): void {
    this.lines = [];
    this.shown = [];
    this.received = 0;
    this.element.dataset.received = "0";
    this.stick = true;
    this.schedule();
  }

  setFilter(text: string, stream: string): void {
    this.text = text.toLowerCase();
    this.streamName = stream;
    this.shown = this.lines.filter((line) => this.matches(line));
    this.schedule();
  }

  render(): void {
    this.pending = false;
    const total = this.shown.length;
    this.spacer.style.height = `${total * ROW_PX}px`;
    if (this.stick) this.element.scrollTop = this.element.scrollHeight;
    const first = Math.max(0, Math.floor(this.element.scrollTop / ROW_PX) - OVERSCAN);
    const count = Math.ceil(this.element.clientHeight / ROW_PX) + 2 * OVERSCAN;
    const slice = this.shown.slice(first, first + count);
    this.rows.style.transform = `translateY(${first * ROW_PX}px)`;
    const fragment = document.createDocumentFragment();
    for (const line of slice) {
      fragment.append(h("div", { class: `log-line log-${line.stream}`, role: "listitem" }, line.time ? h("time", {}, line.time.slice(11, 23)) : null, line.text));
    }
    this.rows.replaceChildren(fragment);
  }

  private matches(line: Line): boolean {
    if (line.gap) return true;
    if (this.streamName && line.stream !== this.streamName) return false;
    return !this.text || line.text.toLowerCase().includes(this.text);
  }

  private push(line: Line): void {
    this.lines.push(line);
    if (this.matches(line)) this.shown.push(line);
    if (this.lines.length > MAX_LINES * 1.1) {
      // Drop in batches so trimming is amortised, not one shift() per line.
      this.lines = this.lines.slice(-MAX_LINES);
      this.shown = this.lines.filter((l) => this.matches(l));
    }
  }

  private schedule(): void {
    if (this.pending || this.paused) return;
    this.pending = true;
    requestAnimationFrame(() => this.render());
  }
}
