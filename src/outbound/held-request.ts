/**
 * A request the dispatcher holds before it can run: waiting for discovery to answer for its host,
 * or for a pending split backend or endpoints. The caller is told the request started at once
 * (`onConnect`), so its abort (fetch's AbortSignal) ends the wait at once; once the request runs —
 * as a MeshRequest, or handed to the egress agent — the abort goes to it. Nothing is told to the
 * caller during `dispatch` itself (as failHandler defers).
 */
import type { Dispatcher } from 'undici';
import { type LegacyHandler, legacyHandler } from './handler.js';

export class HeldRequest {
  readonly caller: LegacyHandler;
  #aborted: Error | undefined;
  #relay: ((reason?: Error) => void) | undefined;
  #onAbort: () => void = () => {};
  /** Settles when the caller aborts while the request is held. */
  readonly abortedWhileWaiting: Promise<void>;

  private constructor(handler: Dispatcher.DispatchHandler) {
    this.caller = legacyHandler(handler);
    this.abortedWhileWaiting = new Promise<void>((resolve) => (this.#onAbort = resolve));
  }

  /** Tells the caller the request started; undefined (the caller failed) when its onConnect throws. */
  static async hold(handler: Dispatcher.DispatchHandler): Promise<HeldRequest | undefined> {
    const held = new HeldRequest(handler);
    try {
      held.caller.onConnect?.((reason?: Error) => {
        if (held.#relay) return held.#relay(reason);
        held.#aborted ??= reason ?? Object.assign(new Error('Request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
        held.#onAbort();
      });
    } catch (e) {
      queueMicrotask(() => held.fail(e as Error));
      return undefined;
    }
    await null;
    return held;
  }

  /** The caller's abort, when it came while the request was held. */
  get aborted(): Error | undefined {
    return this.#aborted;
  }

  fail(e: Error): void {
    this.caller.onError?.(e);
  }

  /** For MeshRequest: where the caller's abort goes once it runs. */
  readonly started = (abort: (reason?: Error) => void): void => {
    this.#relay = abort;
  };

  /**
   * The caller's handler for a dispatcher that will call onConnect itself (the egress agent):
   * that call is not passed on (the caller was told already); its abort becomes the relay.
   */
  relaying(): Dispatcher.DispatchHandler {
    const c = this.caller;
    const h: LegacyHandler = {
      onConnect: (abort) => {
        this.#relay = abort;
        if (this.#aborted) abort(this.#aborted);
      },
      onResponseStarted: () => c.onResponseStarted?.(),
      onHeaders: (status, raw, resume, text) => c.onHeaders?.(status, raw, resume, text),
      onData: (chunk) => c.onData?.(chunk),
      onComplete: (trailers) => c.onComplete?.(trailers),
      onError: (err) => c.onError?.(err),
      onUpgrade: (status, raw, socket) => c.onUpgrade?.(status, raw, socket),
    };
    return h as unknown as Dispatcher.DispatchHandler;
  }
}
