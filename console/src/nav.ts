// Navigation without a page load: pages call navigate(); the shell (main.ts) does the drawing.
let draw: () => void = () => {};

export function setRenderer(render: () => void): void {
  draw = render;
}

export function navigate(path: string, replace = false): void {
  const url = "/console" + path;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  draw();
}
