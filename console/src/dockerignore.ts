// A folder's .dockerignore applied in the browser, with the CLI's rules (coordinator/client/
// packing.py): one pattern per line, "#" comments, "!" re-includes, */?/[...] within a path
// segment, ** across segments, a pattern naming a directory excludes everything under it, the
// last match wins, and every .git directory is left out always.

export const IGNORE_FILE = ".dockerignore";
const ALWAYS_EXCLUDED = new Set([".git"]);

export interface Rule {
  pattern: RegExp;
  negated: boolean;
}

const escape = (c: string) => c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

// A pattern as a regex over a slash-separated relative path (packing.py's _compile).
function compile(pattern: string): RegExp {
  const out: string[] = [];
  let i = 0;
  while (i < pattern.length) {
    if (pattern.startsWith("**/", i) && (i === 0 || pattern[i - 1] === "/")) {
      out.push("(?:.*/)?"); // zero or more leading directories
      i += 3;
    } else if (pattern.startsWith("**", i)) {
      out.push(".*");
      i += 2;
    } else if (pattern[i] === "*") {
      out.push("[^/]*");
      i += 1;
    } else if (pattern[i] === "?") {
      out.push("[^/]");
      i += 1;
    } else if (pattern[i] === "[" && pattern.indexOf("]", i + 2) !== -1) {
      const close = pattern.indexOf("]", i + 2);
      const body = pattern.slice(i + 1, close).replaceAll("\\", "\\\\");
      out.push(body.startsWith("!") ? `[^${body.slice(1)}]` : `[${body}]`);
      i = close + 1;
    } else {
      out.push(escape(pattern[i]));
      i += 1;
    }
  }
  // A pattern that names a directory also excludes everything below it.
  return new RegExp(`^(?:${out.join("")})(?:/.*)?$`, "s");
}

// Python's os.path.normpath for a relative slash path: no "." or empty segments, ".." folded.
function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && parts.length && parts[parts.length - 1] !== "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

// The rules of a .dockerignore file's text.
export function parseRules(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    let pattern = line.trim();
    if (!pattern || pattern.startsWith("#")) continue;
    const negated = pattern.startsWith("!");
    if (negated) pattern = pattern.slice(1).trim();
    const clean = normalize(pattern);
    if (clean) rules.push({ pattern: compile(clean), negated });
  }
  return rules;
}

// Whether a slash-separated path inside the folder is left out (the last match wins).
export function excluded(relative: string, rules: Rule[]): boolean {
  if (relative.split("/").some((part) => ALWAYS_EXCLUDED.has(part))) return true;
  let verdict = false;
  for (const rule of rules) if (rule.pattern.test(relative)) verdict = !rule.negated;
  return verdict;
}
