// The console's shell: navigation, the router (history API under /console/), sign-in guard.
import { onUnauthorized } from "./api";
import { h, link } from "./dom";
import { navigate, setRenderer } from "./nav";
import { forgetContext, switcher } from "./org";
import { session } from "./session";

export type Page = (root: HTMLElement, params: string[], signal: AbortSignal) => Promise<void>;

const routes: [RegExp, string, () => Promise<Page>][] = [
  [/^\/sign-in$/, "Sign in", async () => (await import("./pages/signin")).page],
  [/^\/servers$/, "Servers", async () => (await import("./pages/servers")).page],
  [/^\/servers\/([\w-]+)$/, "Server", async () => (await import("./pages/server")).page],
  [/^\/projects$/, "Projects", async () => (await import("./pages/projects")).projects],
  [/^\/projects\/([\w-]+)$/, "Project", async () => (await import("./pages/projects")).project],
  [/^\/environments\/([\w-]+)$/, "Environment", async () => (await import("./pages/projects")).environment],
  [/^\/resources\/([\w-]+)$/, "Resource", async () => (await import("./pages/resource")).page],
  [/^\/resources\/([\w-]+)\/terminal$/, "Terminal", async () => (await import("./pages/terminal")).page],
  [/^\/audit$/, "Audit log", async () => (await import("./pages/audit")).page],
  [/^\/tokens$/, "API tokens", async () => (await import("./pages/tokens")).page],
  [/^\/sessions$/, "Sessions", async () => (await import("./pages/sessions")).page],
  [/^\/resources\/([\w-]+)\/domains$/, "Domains", async () => (await import("./pages/domains")).page],
  [/^\/certificates$/, "Certificates", async () => (await import("./pages/certificates")).list],
  [/^\/certificates\/([\w-]+)$/, "Certificate", async () => (await import("./pages/certificates")).show],
  [/^\/resources\/([\w-]+)\/storage$/, "Storage and databases", async () => (await import("./pages/storage")).resourcePage],
  [/^\/environments\/([\w-]+)\/storage$/, "Storage and databases", async () => (await import("./pages/storage")).environmentPage],
  [/^\/projects\/([\w-]+)\/settings$/, "Project settings", async () => (await import("./pages/settings")).projectSettings],
  [/^\/environments\/([\w-]+)\/settings$/, "Environment settings", async () => (await import("./pages/settings")).environmentSettings],
  [/^\/resources\/([\w-]+)\/tasks$/, "Scheduled tasks", async () => (await import("./pages/tasks")).page],
  [/^\/organization$/, "Organization", async () => (await import("./pages/organization")).page],
  [/^\/accept-invitation$/, "Accept an invitation", async () => (await import("./pages/invitation")).page],
  [/^\/wildcard-certificates\/([\w-]+)$/, "Wildcard certificate", async () => (await import("./pages/wildcards")).show],
  [/^\/default-access$/, "Default access domains", async () => (await import("./pages/defaultaccess")).page],
  [/^\/resources\/([\w-]+)\/profiles$/, "Runtime, network, access and health", async () => (await import("./pages/profiles")).page],
  [/^\/resources\/([\w-]+)\/source$/, "Source", async () => (await import("./pages/source")).page],
  [/^\/account$/, "Account", async () => (await import("./pages/account")).page],
  [/^\/deployments\/([\w-]+)$/, "Deployment", async () => (await import("./pages/deployment")).page],
  [/^\/volume-backups\/([\w-]+)$/, "Volume backup", async () => (await import("./pages/volumebackup")).page],
  [/^\/dns-providers\/([\w-]+)$/, "DNS provider", async () => (await import("./pages/dnsprovider")).page],
  [/^\/databases\/([\w-]+)$/, "Database", async () => (await import("./pages/database")).page],
  [/^\/operator-work$/, "Operator work", async () => (await import("./pages/operatorwork")).page],
  [/^\/retention$/, "Retention", async () => (await import("./pages/retention")).page],
  [/^\/notifications$/, "Notifications", async () => (await import("./pages/notifications")).page],
  [/^\/backup-targets$/, "Backup targets", async () => (await import("./pages/backuptargets")).page],
];
// Pages reachable without signing in (the invitation's secret is the credential).
const PUBLIC = new Set(["/sign-in", "/accept-invitation"]);

const app = document.getElementById("app")!;
let current: AbortController | null = null;

function shell(): { main: HTMLElement } {
  const nav = h(
    "nav",
    { "aria-label": "Main" },
    h("span", { class: "brand" }, "Berth"),
    link("/servers", "Servers"),
    link("/projects", "Projects"),
    link("/certificates", "Certificates"),
    link("/audit", "Audit log"),
    link("/tokens", "API tokens"),
    link("/sessions", "Sessions"),
    link("/organization", "Organization"),
    link("/account", "Account"),
    link("/operator-work", "Operator work"),
    link("/notifications", "Notifications"),
    link("/backup-targets", "Backup targets"),
    switcher(() => void render()),
    h("button", { type: "button", class: "link", id: "sign-out", onclick: () => void signOut() }, "Sign out"),
  );
  const main = h("main", { id: "main", tabindex: -1 });
  app.replaceChildren(h("header", {}, nav), main);
  return { main };
}


async function signOut(): Promise<void> {
  await session.signOut();
  forgetContext();
  navigate("/sign-in");
}

async function render(): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  let path = location.pathname.replace(/^\/console/, "").replace(/\/$/, "") || "/";
  if (!session.signedIn() && !PUBLIC.has(path)) {
    history.replaceState(null, "", "/console/sign-in?next=" + encodeURIComponent(path));
    path = "/sign-in";
  } else if (path === "/") {
    history.replaceState(null, "", "/console/servers");
    path = "/servers";
  }
  // One current-context read per drawing, shared by the header's switcher and the page.
  forgetContext();
  const match = routes.map(([pattern, title, load]) => [pattern.exec(path), title, load] as const).find(([m]) => m);
  let main: HTMLElement;
  if (path === "/sign-in" || (path === "/accept-invitation" && !session.signedIn())) {
    main = h("main", { id: "main", class: "narrow" });
    app.replaceChildren(main);
  } else {
    main = shell().main;
  }
  for (const anchor of app.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (path.startsWith(anchor.pathname.replace(/^\/console/, ""))) anchor.setAttribute("aria-current", "page");
  }
  if (!match) {
    document.title = "Not found · Berth";
    main.append(h("h1", {}, "Not found"), h("p", {}, "No console page has this address. "), link("/servers", "Servers"));
    return;
  }
  const [found, title, load] = match;
  document.title = `${title} · Berth`;
  main.setAttribute("aria-busy", "true");
  try {
    const page = await load();
    if (controller.signal.aborted) return;
    await page(main, found!.slice(1), controller.signal);
    // The page has its data and its handlers: bench/console.py reads this as time to interactive.
    if (!controller.signal.aborted) performance.mark("berth:page-ready", { detail: path });
  } catch (error) {
    if (!controller.signal.aborted) main.append(h("p", { class: "error", role: "alert" }, String((error as Error).message ?? error)));
  } finally {
    main.removeAttribute("aria-busy");
  }
}

document.addEventListener("click", (event) => {
  const anchor = (event.target as Element).closest?.("a[data-nav]") as HTMLAnchorElement | null;
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(anchor.pathname.replace(/^\/console/, "") + anchor.search);
});
setRenderer(() => void render());
window.addEventListener("popstate", () => void render());
onUnauthorized(() => {
  // The session expired or was revoked (or the token): nothing kept here is worth anything now.
  session.forget();
  forgetContext();
  if (!location.pathname.endsWith("/sign-in")) navigate("/sign-in?expired=1", true);
});
void render();
