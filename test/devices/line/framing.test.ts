import { describe, expect, it } from 'vitest';
import { createFramer, type FramerOptions } from '../../../src/devices/line/framing.js';

const defaults: FramerOptions = { maxFrameLength: 64, encoding: 'latin1', trimWhitespace: true };
const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds the text one byte at a time, the worst fragmentation a port can produce. */
function byteByByte(framer: ReturnType<typeof createFramer>, text: string): string[] {
  const out: string[] = [];
  for (const byte of Buffer.from(text, 'latin1')) out.push(...framer.push(Buffer.from([byte])));
  return out;
}

describe('delimiter framing', () => {
  it('splits on "\\n", strips "\\r" and surrounding whitespace, skips empty lines', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, defaults);
    expect(f.push(b('a=1\r\n  b=2 \n\n\r\nc='))).toEqual(['a=1', 'b=2']);
    expect(f.push(b('3\n'))).toEqual(['c=3']);
    expect(f.stats.frames).toBe(3);
  });

  it('reassembles lines split into single bytes', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, defaults);
    expect(byteByByte(f, 'T=21.5\r\nH=40\r\n')).toEqual(['T=21.5', 'H=40']);
  });

  it('handles a multi-byte delimiter split across chunks', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\r\n' }, { ...defaults, trimWhitespace: false });
    expect(f.push(b('one\r'))).toEqual([]);
    expect(f.push(b('\ntwo\r'))).toEqual(['one']);
    expect(f.push(b('\n'))).toEqual(['two']);
  });

  it('keeps whitespace when told to', () => {
    const f = createFramer({ type: 'delimiter', delimiter: ';' }, { ...defaults, trimWhitespace: false });
    expect(f.push(b(' a ; b;'))).toEqual([' a ', ' b']);
  });

  it('drops an overlong line and counts it, then resynchronises on the next delimiter', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, { ...defaults, maxFrameLength: 10 });
    expect(f.push(b('0123456789ABCDEF'))).toEqual([]);
    expect(f.push(b('more junk without end'))).toEqual([]);
    expect(f.push(b('tail\nok=1\n'))).toEqual(['ok=1']);
    expect(f.stats.overlong).toBe(1);
    expect(f.stats.droppedBytes).toBe('0123456789ABCDEF'.length + 'more junk without end'.length + 'tail'.length);
  });

  it('drops an overlong line that arrives whole in one chunk', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, { ...defaults, maxFrameLength: 5 });
    expect(f.push(b('toolongline\nfine\n'))).toEqual(['fine']);
    expect(f.stats.overlong).toBe(1);
  });

  it('bounds memory while a device streams without delimiters', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, { ...defaults, maxFrameLength: 100 });
    const chunk = b('x'.repeat(1000));
    for (let i = 0; i < 1000; i++) f.push(chunk);
    expect(f.push(b('\nafter\n'))).toEqual(['after']);
    expect(f.stats.overlong).toBe(1);
    expect(f.stats.droppedBytes).toBe(1_000_000);
  });

  it('decodes UTF-8 only after the frame is complete, so split characters survive', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, { ...defaults, encoding: 'utf8' });
    const bytes = Buffer.from('T=21.5°C\n', 'utf8');
    const out: string[] = [];
    for (const byte of bytes) out.push(...f.push(Buffer.from([byte])));
    expect(out).toEqual(['T=21.5°C']);
  });

  it('reset() forgets a partial line', () => {
    const f = createFramer({ type: 'delimiter', delimiter: '\n' }, defaults);
    f.push(b('half a li'));
    f.reset();
    expect(f.push(b('ne\nwhole\n'))).toEqual(['ne', 'whole']);
  });
});

describe('fixed-length framing', () => {
  it('cuts every N bytes regardless of chunking', () => {
    const f = createFramer({ type: 'fixed-length', length: 4 }, { ...defaults, trimWhitespace: false });
    expect(byteByByte(f, 'ABCDEFGHIJ')).toEqual(['ABCD', 'EFGH']);
    expect(f.push(b('KL'))).toEqual(['IJKL']);
  });
});

describe('regex framing', () => {
  it('takes each match as a frame and drops noise between frames', () => {
    const f = createFramer({ type: 'regex', pattern: 'STX(?<frame>[^\\x03]*)\\x03', flags: '' }, defaults);
    expect(byteByByte(f, 'noiseSTXw=12.5\x03garbSTXw=13\x03')).toEqual(['w=12.5', 'w=13']);
    expect(f.stats.droppedBytes).toBe('noise'.length + 'garb'.length);
  });

  it('bounds the buffer when nothing matches', () => {
    const f = createFramer({ type: 'regex', pattern: '<[^>]*>', flags: '' }, { ...defaults, maxFrameLength: 16 });
    f.push(b('x'.repeat(100)));
    expect(f.push(b('<ok>'))).toEqual(['<ok>']);
    expect(f.stats.overlong).toBeGreaterThanOrEqual(1);
  });
});
