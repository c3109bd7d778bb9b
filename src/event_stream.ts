/**
 * Bridge events as a web `ReadableStream` (for Server-Sent Events and runtimes without
 * socket.io).
 * @module
 */
import type {
  BridgeEvent,
  EventFilter,
  EventOrigin,
  SessionDestroyEvent,
  SessionEventMap,
  SessionListener,
  SessionSetEvent,
} from "./events.ts";

/** What the stream needs from a manager. */
export interface EventSource {
  on<K extends keyof SessionEventMap>(name: K, listener: SessionListener<K>): unknown;
  off<K extends keyof SessionEventMap>(name: K, listener: SessionListener<K>): unknown;
}

/** Events a slow reader may leave unread before the stream fails (it never buffers without bound). */
export const MAX_BUFFERED_EVENTS = 1024;

/**
 * A stream of the events that match `filter`. Cancelling the stream (or its reader) removes the
 * listeners. A reader that falls {@linkcode MAX_BUFFERED_EVENTS} events behind gets an error
 * instead of unbounded buffering.
 */
export function eventStream(
  source: EventSource,
  filter: EventFilter = {},
): ReadableStream<BridgeEvent> {
  if (filter === null || typeof filter !== "object") {
    throw new TypeError("Cannot stream events: filter must be an object");
  }
  const types = filter.types ? new Set(filter.types) : undefined;
  const scoped = filter.clientId !== undefined || filter.sessionId !== undefined;
  const matches = (e: { clientId: string | undefined; sessionId: string }): boolean =>
    (filter.clientId === undefined || e.clientId === filter.clientId) &&
    (filter.sessionId === undefined || e.sessionId === filter.sessionId);
  let stop = (): void => {};
  return new ReadableStream<BridgeEvent>({
    start(controller) {
      const push = (event: BridgeEvent): void => {
        if (types && !types.has(event.type)) return;
        if ((controller.desiredSize ?? 0) <= -MAX_BUFFERED_EVENTS) {
          stop();
          controller.error(
            new Error(`Event stream reader fell ${MAX_BUFFERED_EVENTS} events behind`),
          );
          return;
        }
        controller.enqueue(event);
      };
      const onSet = (e: SessionSetEvent): void => {
        if (matches(e)) push({ type: "sessionSet", ...e });
      };
      const onDestroy = (e: SessionDestroyEvent): void => {
        if (matches(e)) push({ type: "sessionDestroy", ...e });
      };
      const onCleanup = (count: number, origin: EventOrigin): void => {
        if (!scoped) push({ type: "cleanup", count, remote: origin.remote });
      };
      source.on("sessionSet", onSet);
      source.on("sessionDestroy", onDestroy);
      source.on("cleanup", onCleanup);
      stop = () => {
        source.off("sessionSet", onSet);
        source.off("sessionDestroy", onDestroy);
        source.off("cleanup", onCleanup);
      };
    },
    cancel() {
      stop();
    },
  }, { highWaterMark: 0 });
}
