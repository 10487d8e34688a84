// Turns the byte chunks a serial port delivers (split anywhere) into whole frames. Memory is bounded:
// a device that never sends the delimiter costs at most maxFrameLength bytes.
import type { LineFraming } from './schema.js';

export interface FramerOptions {
  maxFrameLength: number;
  encoding: BufferEncoding;
  trimWhitespace: boolean;
}

export interface FramerStats {
  frames: number;
  /** Frames dropped because they were longer than maxFrameLength. */
  overlong: number;
  /** Bytes discarded: overlong frames and, with regex framing, bytes before a match. */
  droppedBytes: number;
}

export interface Framer {
  push(chunk: Buffer): string[];
  /** Forgets a partial frame, e.g. after the port was reopened. */
  reset(): void;
  readonly stats: FramerStats;
}

// Frames are handled as latin1 strings internally: one character per byte, so lengths are byte
// counts and no multi-byte character is ever split; each frame is decoded once at the end.
export function createFramer(framing: LineFraming, options: FramerOptions): Framer {
  switch (framing.type) {
    case 'delimiter':
      return delimiterFramer(framing.delimiter, options);
    case 'fixed-length':
      return fixedLengthFramer(framing.length, options);
    case 'regex':
      return regexFramer(new RegExp(framing.pattern, framing.flags), options);
  }
}

function finish(frame: string, options: FramerOptions): string {
  let text = options.encoding === 'latin1' ? frame : Buffer.from(frame, 'latin1').toString(options.encoding);
  if (options.trimWhitespace) text = text.replace(/^[\s\0]+|[\s\0]+$/g, '');
  return text;
}

function delimiterFramer(delimiter: string, options: FramerOptions): Framer {
  const delim = Buffer.from(delimiter, 'utf8').toString('latin1');
  const stripCarriageReturn = delimiter === '\n';
  const stats: FramerStats = { frames: 0, overlong: 0, droppedBytes: 0 };
  let buffer = '';
  let discarding = false; // inside an overlong frame: drop everything up to the next delimiter

  return {
    stats,
    reset() {
      buffer = '';
      discarding = false;
    },
    push(chunk) {
      buffer += chunk.toString('latin1');
      const frames: string[] = [];
      let at: number;
      while ((at = buffer.indexOf(delim)) >= 0) {
        let frame = buffer.slice(0, at);
        buffer = buffer.slice(at + delim.length);
        if (discarding) {
          discarding = false;
          stats.droppedBytes += frame.length;
          continue;
        }
        if (stripCarriageReturn && frame.endsWith('\r')) frame = frame.slice(0, -1);
        acceptFrame(frame, options, stats, frames);
      }
      if (buffer.length > options.maxFrameLength) {
        if (!discarding) stats.overlong++;
        discarding = true;
        stats.droppedBytes += buffer.length;
        // Keep a possible partial delimiter so the next chunk can still complete it.
        const keep = delim.length - 1;
        buffer = keep > 0 ? buffer.slice(-keep) : '';
        stats.droppedBytes -= buffer.length;
      }
      return frames;
    },
  };
}

/** Counts and drops an overlong frame, otherwise keeps its non-empty text. */
function acceptFrame(frame: string, options: FramerOptions, stats: FramerStats, frames: string[]): void {
  if (frame.length > options.maxFrameLength) {
    stats.overlong++;
    stats.droppedBytes += frame.length;
    return;
  }
  const text = finish(frame, options);
  if (text === '') return;
  stats.frames++;
  frames.push(text);
}

function fixedLengthFramer(length: number, options: FramerOptions): Framer {
  const stats: FramerStats = { frames: 0, overlong: 0, droppedBytes: 0 };
  let buffer = '';
  return {
    stats,
    reset() {
      buffer = '';
    },
    push(chunk) {
      buffer += chunk.toString('latin1');
      const frames: string[] = [];
      while (buffer.length >= length) {
        const text = finish(buffer.slice(0, length), options);
        buffer = buffer.slice(length);
        stats.frames++;
        frames.push(text);
      }
      return frames;
    },
  };
}

function regexFramer(pattern: RegExp, options: FramerOptions): Framer {
  const stats: FramerStats = { frames: 0, overlong: 0, droppedBytes: 0 };
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  let buffer = '';
  return {
    stats,
    reset() {
      buffer = '';
    },
    push(chunk) {
      buffer += chunk.toString('latin1');
      const frames: string[] = [];
      for (;;) {
        const m = re.exec(buffer);
        if (!m || m[0].length === 0) break;
        stats.droppedBytes += m.index;
        buffer = buffer.slice(m.index + m[0].length);
        acceptFrame(m.groups?.frame ?? m[0], options, stats, frames);
      }
      if (buffer.length > options.maxFrameLength) {
        stats.overlong++;
        stats.droppedBytes += buffer.length - options.maxFrameLength;
        buffer = buffer.slice(-options.maxFrameLength);
      }
      return frames;
    },
  };
}
