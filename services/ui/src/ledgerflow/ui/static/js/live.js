// Live updates from the API's event stream (server-sent events fed from Kafka).
//
// One EventSource per filter, through the UI's /api proxy (which turns ?access_token and
// ?last_event_id into headers, since EventSource cannot set them). Each SSE `id:` is a
// resumable position: the browser resends it as Last-Event-ID on its own reconnects, and
// when we have to open a new EventSource (the API closed the stream for good, or the
// filter changed) we pass the last position we saw, so no event is lost. Views never poll
// the API for changes; they refresh the piece an event names.
import { session } from "./core.js";

export const STREAM_PATH = "/api/v2/events/stream";

// Named SSE events the API may send (`event: TYPE`); unnamed ones arrive as "message".
// (the payload types of libs/common/.../events.py, plus a few expected soon).
const KNOWN_TYPES = [
  "DagVersionPublished", "TriggerDagRun", "SetDagPaused", "ClearTaskInstances", "SetTaskInstanceState",
  "SetDagRunState", "DagPauseChanged", "DagRunQueued", "DagRunStarted", "DagRunSucceeded", "DagRunFailed",
  "TriggerRejected", "TaskInstanceQueued", "TaskInstanceUpForRetry", "TaskInstanceFailed",
  "TaskInstanceUpstreamFailed", "TaskInstanceMapExpanded", "TaskInstanceSkipped",
  "TaskInstanceFailedByScheduler", "TaskAttemptZombie", "TaskInstanceCleared", "TaskInstanceStateSet",
  "DagRunStateSet", "TaskInstanceScheduled", "PoolSlotsGranted", "TaskAttemptStarted",
  "TaskAttemptSucceeded", "TaskAttemptSkipped", "TaskAttemptRescheduled", "TaskAttemptFailed",
  "TaskAttemptHeartbeat", "CancelTaskAttempt", "TaskLogChunk", "VariableSet", "VariableDeleted",
  "ConnectionSet", "ConnectionDeleted", "PoolSet", "PoolDeleted", "UserCreated", "UserUpdated",
  "UserDeleted", "ApiKeyCreated", "ApiKeyRevoked", "AssetEventEmitted", "DagDeleted", "DagRunDeleted",
  "BackfillCreated", "BackfillRejected", "BackfillRunReprocessed", "BackfillPaused", "BackfillUnpaused",
  "BackfillCancelled", "BackfillCompleted", "CreateBackfill", "PauseBackfill", "UnpauseBackfill", "CancelBackfill",
];

/** The types views react to: everything but log chunks, heartbeats and work items. */
export const VIEW_TYPES = KNOWN_TYPES.filter((t) => !["TaskLogChunk", "TaskAttemptHeartbeat"].includes(t));

/** Normalise whatever the stream sends (a CloudEvent, an envelope, or a bare payload). */
export function parseEvent(raw, sseType) {
  let doc;
  try { doc = JSON.parse(raw); } catch { return null; }
  if (!doc || typeof doc !== "object") return null;
  const data = (doc.data && typeof doc.data === "object") ? doc.data : doc;
  let type = data.type || doc.type || sseType || "";
  type = String(type).replace(/^io\.ledgerflow\./, "");
  return {
    type,
    dagId: data.dag_id ?? doc.dag_id ?? doc.subject ?? doc.aggregatekey ?? null,
    runId: data.run_id ?? doc.run_id ?? doc.correlationid ?? null,
    taskId: data.task_id ?? null,
    mapIndex: data.map_index ?? -1,
    tryNumber: data.try_number ?? null,
    time: doc.time ?? data.at ?? null,
    data,
    doc,
  };
}

/**
 * A resumable subscription. `onEvent(evt)` per event; `onStatus(status)` with
 * "connecting" | "live" | "reconnecting" | "unavailable".
 */
export class LiveStream {
  constructor(filters, { onEvent, onStatus = () => {} }) {
    this.filters = filters;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.lastId = null;
    this.source = null;
    this.closed = false;
    this.retryMs = 500;
    this.status = "connecting";
    this.seen = new Set(); // event ids already handled (a resume may repeat the last one)
  }

  url() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(this.filters || {})) if (v) q.set(k, v);
    q.set("access_token", session.token || "");
    if (this.lastId) q.set("last_event_id", this.lastId);
    return `${STREAM_PATH}?${q}`;
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
  }

  start() {
    if (this.closed) return;
    this.setStatus(this.lastId ? "reconnecting" : "connecting");
    const source = new EventSource(this.url());
    this.source = source;
    const handle = (message) => {
      if (message.lastEventId) this.lastId = message.lastEventId;
      const key = message.lastEventId ? `${message.lastEventId}` : null;
      if (key && this.seen.has(key)) return;
      if (key) { this.seen.add(key); if (this.seen.size > 5000) this.seen = new Set([key]); }
      const evt = parseEvent(message.data, message.type !== "message" ? message.type : null);
      if (evt && evt.type !== "heartbeat") this.onEvent(evt);
    };
    source.onmessage = handle;
    // The API names each event by its CloudEvents type (io.ledgerflow.X); accept bare names too.
    for (const type of KNOWN_TYPES) {
      source.addEventListener(type, handle);
      source.addEventListener(`io.ledgerflow.${type}`, handle);
    }
    // The stream starts at the log's end (or where we left off); what happened before
    // the connection was positioned is read once more by the views ("resync").
    source.onopen = () => { this.retryMs = 500; this.setStatus("live"); this.onEvent({ type: "resync" }); };
    source.onerror = () => {
      if (this.closed || source !== this.source) return;
      if (source.readyState === EventSource.CONNECTING) { this.setStatus("reconnecting"); return; }
      // CLOSED: the API refused the stream (no such endpoint, auth) or dropped it for good.
      source.close();
      this.diagnose().then((missing) => {
        if (this.closed || source !== this.source) return;
        if (missing) { this.setStatus("unavailable"); return; }
        this.setStatus("reconnecting");
        setTimeout(() => this.start(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 15000);
      });
    };
    return this;
  }

  /** After a failed connection: is the endpoint missing (then stop trying)? */
  async diagnose() {
    try {
      const controller = new AbortController();
      const response = await fetch(`${STREAM_PATH}?types=Heartbeat`, {
        headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" },
        signal: controller.signal,
      });
      controller.abort();
      return response.status === 404 || response.status === 405;
    } catch { return false; }
  }

  stop() {
    this.closed = true;
    if (this.source) this.source.close();
    this.source = null;
  }
}
