// The hub's REST API and its server-sent-events stream, with the bearer token.
//
// The token comes from the URL fragment (#token=...), as the hub prints it in local mode, and is
// kept in localStorage; the fragment is removed from the address bar at once so that it does not
// stay in the history or on the screen.

const TOKEN_KEY = "safetyHub.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/** The token from #token=..., else the stored one; null when there is none. */
export function initialToken() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromUrl = hash.get("token");
  if (fromUrl) {
    storeToken(fromUrl);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    return fromUrl;
  }
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage unavailable: the token lives for this page only
  }
}

/** FastAPI's `detail` as one readable line (a string, or a list of validation errors). */
function detailText(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

export class Api {
  constructor(token, { onUnauthorized, onReachable } = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized || (() => {});
    this.onReachable = onReachable || (() => {});
  }

  async request(path, { method = "GET", body, signal } = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      this.onReachable(false, err.message || String(err));
      throw new ApiError(0, err.message || String(err));
    }
    this.onReachable(true);
    if (!res.ok) {
      let parsed = null;
      try {
        parsed = await res.json();
      } catch {
        parsed = null;
      }
      const error = new ApiError(res.status, detailText(parsed) || res.statusText);
      if (res.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return res;
  }

  async json(path, options) {
    const res = await this.request(path, options);
    return res.json();
  }

  me() {
    return this.json("/api/v1/me");
  }

  plant() {
    return this.json("/api/v1/plant");
  }

  system() {
    return this.json("/api/v1/system");
  }

  /** Province mode's parks (docs/province.md); a 404 when the hub is not in province mode. */
  provinceParks() {
    return this.json("/api/v1/province/parks");
  }

  /** A park's enterprises and hazard sources with their worst tier; ``park`` URL-encoded. */
  provincePark(park) {
    return this.json(`/api/v1/province/parks/${park}`);
  }

  /** A park's latest reading per point code; ``park`` URL-encoded. */
  provinceReadings(park) {
    return this.json(`/api/v1/province/parks/${park}/readings`);
  }

  tags() {
    return this.json("/api/v1/tags");
  }

  /** Every alarm the list shows (not normal), in the API's order, following the pages. */
  async alarms() {
    const pageSize = 1000;
    const all = [];
    for (let offset = 0; offset < 20000; offset += pageSize) {
      const res = await this.request(`/api/v1/alarms?limit=${pageSize}&offset=${offset}`);
      const page = await res.json();
      all.push(...page);
      const total = Number(res.headers.get("X-Total-Count"));
      if (page.length < pageSize || (Number.isFinite(total) && all.length >= total)) break;
    }
    return all;
  }

  /** The warnings past their disposal time limit, in any state (normal ones too). */
  overdue() {
    return this.json("/api/v1/alarms?overdue=true&include_normal=true&limit=1000");
  }

  journal(alarmId) {
    return this.json(`/api/v1/alarms/${encodeURIComponent(alarmId)}/journal`);
  }

  latest(enterprise, tag) {
    return this.json(`/api/v1/tags/${encodeURIComponent(enterprise)}/${encodeURIComponent(tag)}/latest`);
  }

  history(enterprise, tag, startMs, endMs, everyS) {
    const q = new URLSearchParams({ start: String(startMs), end: String(endMs), every: String(everyS) });
    return this.json(
      `/api/v1/tags/${encodeURIComponent(enterprise)}/${encodeURIComponent(tag)}/history?${q}`,
    );
  }

  /** POST /api/v1/alarms/{id}/{action}; the user is the token's, the body has the rest. */
  act(alarmId, action, body) {
    return this.json(`/api/v1/alarms/${encodeURIComponent(alarmId)}/${action}`, {
      method: "POST",
      body,
    });
  }

  streamUrl() {
    const q = new URLSearchParams({ alarms: "1", values: "1", access_token: this.token });
    return `/api/v1/stream?${q}`;
  }
}

/**
 * The SSE stream with a watchdog. EventSource reconnects by itself after a network error but
 * gives up on an HTTP error (readyState CLOSED); then this reconnects with a backoff. With no
 * event at all (the hub sends a ping every 15 s) for `staleMs`, the stream counts as dead.
 */
export class Stream {
  constructor(url, { onAlarm, onValue, onState, staleMs = 40000 }) {
    this.url = url;
    this.onAlarm = onAlarm;
    this.onValue = onValue;
    this.onState = onState;
    this.staleMs = staleMs;
    this.es = null;
    // Unknown until the first open or error, so that either is reported: a stream that fails
    // before it ever opened (the hub went away while it was connecting) must say so too.
    this.connected = null;
    this.lastEvent = 0;
    this.retryMs = 1000;
    this.retryTimer = null;
    this.watchdog = setInterval(() => this.check(), 2000);
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
  }

  open() {
    if (this.stopped) return;
    if (this.es) this.es.close();
    const es = new EventSource(this.url);
    this.es = es;
    this.lastEvent = Date.now();
    es.addEventListener("open", () => {
      this.retryMs = 1000;
      this.seen();
    });
    es.addEventListener("alarm", (ev) => {
      this.seen();
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onAlarm(data);
    });
    es.addEventListener("value", (ev) => {
      this.seen();
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onValue(data);
    });
    es.addEventListener("ping", () => this.seen());
    es.addEventListener("error", () => {
      if (es !== this.es) return;
      this.setConnected(false);
      if (es.readyState === EventSource.CLOSED) this.retryLater();
    });
  }

  seen() {
    this.lastEvent = Date.now();
    this.setConnected(true);
  }

  setConnected(value) {
    if (value === this.connected) return;
    this.connected = value;
    this.onState(value);
  }

  retryLater() {
    clearTimeout(this.retryTimer);
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 30000);
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  check() {
    if (this.stopped || !this.es) return;
    if (this.es.readyState === EventSource.OPEN && Date.now() - this.lastEvent > this.staleMs) {
      // Open but silent: a proxy or a half-dead connection. Start over.
      this.setConnected(false);
      this.es.close();
      this.retryLater();
    }
  }
}
