// Form and button helpers shared by the capability pages: every action shows the API's 4xx
// message where the person looks, never a silent failure.
import { errorBox, field, h } from "./dom";

// A labelled form whose submit runs ``submit``; errors (the API's envelope message) go into
// its own status box, and a successful submit may say what it did.
export function actionForm(
  title: string,
  fields: [string, HTMLElement][],
  button: string,
  submit: () => Promise<string | void>,
  attrs: Record<string, string> = {},
): HTMLFormElement {
  const out = h("div", { role: "status", class: "form-status" });
  const form = h(
    "form",
    { class: "card", "aria-label": title, ...attrs },
    h("h2", {}, title),
    ...fields.map(([label, input]) => field(label, input)),
    h("button", { type: "submit" }, button),
    out,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    const submitButton = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
    submitButton.disabled = true;
    try {
      const done = await submit();
      if (done) out.replaceChildren(h("p", { class: "hint" }, done));
    } catch (error) {
      out.replaceChildren(errorBox(error));
    } finally {
      submitButton.disabled = false;
    }
  });
  return form;
}

// A small button running ``run``; ``confirmText`` asks first (destructive actions); failures
// are shown in ``out``.
export function actionButton(
  label: string,
  out: HTMLElement,
  run: () => Promise<void>,
  options: { confirmText?: string; name?: string } = {},
): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "small",
      "aria-label": options.name ?? null,
      onclick: async () => {
        if (options.confirmText && !confirm(options.confirmText)) return;
        out.replaceChildren();
        try {
          await run();
        } catch (error) {
          out.replaceChildren(errorBox(error));
        }
      },
    },
    label,
  );
}

export function table(id: string, headers: string[], rows: HTMLElement[], empty: string): HTMLElement {
  if (!rows.length) return h("p", { class: "hint", id }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { id }, h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, ...rows)),
  );
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function select(id: string, options: [string, string][], attrs: Record<string, string | boolean> = {}): HTMLSelectElement {
  return h("select", { id, name: id, ...attrs }, ...options.map(([value, text]) => h("option", { value }, text)));
}
