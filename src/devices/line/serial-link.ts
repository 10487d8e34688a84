// Keeps one serial port open: opens it, notices when it is lost (USB unplugged, pty gone), and reopens
// it with exponential backoff until stopped. Never throws into the caller's event loop.
import type { SerialPort } from 'serialport';
import { loadSerialPort, serialPortIfLoaded } from '../serialport-module.js';
import type { Logger } from '../../log.js';
import { describeSerialOpenError } from '../serial-open-error.js';
import type { LineBus } from './schema.js';

export interface SerialLinkHandlers {
  onData(chunk: Buffer): void;
  onOpen(): void;
  onLost(reason: string): void;
}

export interface SerialLink {
  readonly isOpen: boolean;
  /** Times the port was opened again after being lost. */
  readonly reopenCount: number;
  /** Resolves once the bytes are handed to the OS; rejects when the port is closed or the write hangs. */
  write(data: Buffer, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A port that stayed open this long is considered healthy: after losing it, reopening starts fast again. */
const steadyPortMs = 10_000;

type PortSettings = Pick<LineBus, 'path' | 'baudRate' | 'parity' | 'dataBits' | 'stopBits' | 'dtr' | 'rts' | 'reconnectInitialDelayMs' | 'reconnectMaxDelayMs'>;

export function openSerialLink(bus: PortSettings, handlers: SerialLinkHandlers, logger: Logger): SerialLink {
  let port: SerialPort | undefined;
  let open = false;
  let stopped = false;
  let everOpened = false;
  let reopenCount = 0;
  let delay = bus.reconnectInitialDelayMs;
  let retryTimer: NodeJS.Timeout | undefined;
  let lastFailure = '';
  let openedAt = 0;

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      logger.error({ err, path: bus.path }, `serial-line handler failed: ${what}`);
    }
  };

  const scheduleOpen = () => {
    if (stopped || retryTimer) return;
    const wait = delay;
    delay = Math.min(delay * 2, bus.reconnectMaxDelayMs);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      tryOpen();
    }, wait);
    retryTimer.unref?.();
  };

  const lost = (candidate: SerialPort, reason: string) => {
    if (candidate !== port) return;
    port = undefined;
    candidate.removeAllListeners('data');
    candidate.removeAllListeners('close');
    if (candidate.isOpen) candidate.close(() => undefined);
    if (open) {
      open = false;
      // Only a port that stayed open for a while earns a quick reopen; one that drops right after
      // opening (a flapping USB connection) keeps backing off.
      if (Date.now() - openedAt >= steadyPortMs) delay = bus.reconnectInitialDelayMs;
      logger.warn({ path: bus.path, reason }, 'serial port lost; reopening with backoff');
      safely('onLost', () => handlers.onLost(reason));
    }
    scheduleOpen();
  };

  const tryOpen = () => {
    if (stopped) return;
    const SerialPort = serialPortIfLoaded();
    if (!SerialPort) {
      loadSerialPort().then(tryOpen, (err: Error) => {
        logger.error({ err, path: bus.path }, 'cannot load the serialport module');
        scheduleOpen();
      });
      return;
    }
    const candidate = new SerialPort({
      path: bus.path,
      baudRate: bus.baudRate,
      parity: bus.parity,
      dataBits: bus.dataBits,
      stopBits: bus.stopBits,
      autoOpen: false,
    });
    port = candidate;
    // Errors after open (a failed write, a close error) arrive here; the close event drives recovery.
    candidate.on('error', (err: Error) => logger.debug({ err, path: bus.path }, 'serial port error'));
    candidate.open((err) => {
      if (candidate !== port) {
        if (!err) candidate.close(() => undefined);
        return;
      }
      if (err) {
        port = undefined;
        if (err.message !== lastFailure) logger.warn({ path: bus.path, err: describeSerialOpenError(bus.path, err.message) }, 'cannot open serial port; retrying');
        lastFailure = err.message;
        scheduleOpen();
        return;
      }
      if (stopped) {
        candidate.close(() => undefined);
        return;
      }
      open = true;
      openedAt = Date.now();
      lastFailure = '';
      if (everOpened) reopenCount++;
      everOpened = true;
      candidate.on('data', (chunk: Buffer) => safely('onData', () => handlers.onData(chunk)));
      candidate.on('close', (closeErr?: Error & { disconnected?: boolean }) => {
        if (stopped) return;
        lost(candidate, closeErr?.disconnected ? 'disconnected' : closeErr ? closeErr.message : 'closed');
      });
      if (bus.dtr !== undefined || bus.rts !== undefined) {
        const lines = { ...(bus.dtr !== undefined ? { dtr: bus.dtr } : {}), ...(bus.rts !== undefined ? { rts: bus.rts } : {}) };
        // ptys and some adapters have no modem lines ("Inappropriate ioctl for device"): carry on.
        candidate.set(lines, (setErr) => {
          if (setErr) logger.warn({ path: bus.path, err: setErr.message }, 'cannot set DTR/RTS on this port; continuing without');
        });
      }
      logger.info({ path: bus.path }, 'serial port open');
      safely('onOpen', () => handlers.onOpen());
    });
  };

  tryOpen();

  return {
    get isOpen() {
      return open;
    },
    get reopenCount() {
      return reopenCount;
    },
    write(data, timeoutMs = 2000) {
      const current = port;
      if (!open || !current) return Promise.reject(new Error('serial port is not open'));
      return new Promise<void>((resolve, reject) => {
        // After a disconnect the write callback may never fire: bound the wait.
        const timer = setTimeout(() => {
          reject(new Error(`write did not complete within ${timeoutMs} ms`));
          lost(current, 'write timed out');
        }, timeoutMs);
        current.write(data, (err) => {
          if (err) {
            clearTimeout(timer);
            reject(err);
            return;
          }
          current.drain((drainErr) => {
            clearTimeout(timer);
            if (drainErr) reject(drainErr);
            else resolve();
          });
        });
      });
    },
    async stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      const current = port;
      port = undefined;
      open = false;
      if (current?.isOpen) {
        await new Promise<void>((resolve) => {
          const guard = setTimeout(resolve, 2000);
          current.close(() => {
            clearTimeout(guard);
            resolve();
          });
        });
      }
      current?.removeAllListeners();
      current?.on('error', () => undefined);
    },
  };
}
