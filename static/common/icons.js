// A few line icons drawn as SVG (no icon font, no emoji: tablets may have neither).
const NS = "http://www.w3.org/2000/svg";

const PATHS = {
  reader: "M6 3h9l5 5v13H6z M15 3v5h5 M9 12h8 M9 16h8",
  materials: "M3 6h7l2 2h9v12H3z M3 10h18",
  agenda: "M8 6h12 M8 12h12 M8 18h12 M4 6h.01 M4 12h.01 M4 18h.01",
  vote: "M4 4h16v16H4z M8 12l3 3 5-6",
  speak: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M6 11a6 6 0 0 0 12 0 M12 17v4 M9 21h6",
  service: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4z M10 20a2 2 0 0 0 4 0",
  notices: "M4 10v4h3l7 4V6L7 10z M17 9a4 4 0 0 1 0 6",
  nameplate: "M3 8h18v10H3z M7 12h10 M7 15h6 M8 8l4-4 4 4",
  water: "M12 3c3 4 6 7 6 11a6 6 0 0 1-12 0c0-4 3-7 6-11z",
  tea: "M4 8h12v6a5 5 0 0 1-5 5H9a5 5 0 0 1-5-5z M16 10h2a2 2 0 0 1 0 4h-2 M7 3v2 M11 3v2",
  paper: "M6 3h9l5 5v13H6z M15 3v5h5",
  pen: "M4 20l1-5L16 4l4 4L9 19z M14 6l4 4",
  technician: "M14 6a4 4 0 0 0 5 5l-8 8a2 2 0 0 1-3-3l8-8a4 4 0 0 0-2-2z",
  other: "M4 5h16v11H9l-5 4z",
  lock: "M6 11h12v9H6z M9 11V8a3 3 0 0 1 6 0v3",
  pointer: "M5 3l14 8-6 2-2 6z",
  ink: "M4 20c4-8 8 0 16-12",
};

/** An <svg> icon, hidden from screen readers (the button's text labels it). */
export function icon(name, size = 26) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", PATHS[name] || PATHS.other);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}
