// Credentials kept per device: the organizer's login (shared by the console
// and the organizer app) and a console opened as a chair/presenter seat.
const ORG_KEY = "meeting.org.token";

export function orgToken() {
  try { return localStorage.getItem(ORG_KEY); } catch { return null; }
}

export function setOrgToken(token) {
  try {
    if (token) localStorage.setItem(ORG_KEY, token);
    else localStorage.removeItem(ORG_KEY);
  } catch { /* private mode */ }
}

export function loadJSON(key) {
  try { return JSON.parse(localStorage.getItem(key) || "null"); } catch { return null; }
}

export function saveJSON(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch { /* ignore */ }
}
