// Decodes one complete packet (as cut by the framer) with mqtt-packet. One parser per protocol
// version is shared by every connection: frames are whole, so parsing is synchronous and a
// connection needs no parser state of its own (memory per idle connection stays small).

import mqttPacket from 'mqtt-packet';
import { decodeSimpleConnect } from './connect-decoder.js';
import { FrameError } from './framer.js';

export type Packet = mqttPacket.Packet;

interface SharedParser {
  parser: mqttPacket.Parser;
  packet: Packet | null;
  error: Error | null;
}

const parsers = new Map<number, SharedParser>();

function parserFor(protocolVersion: number): SharedParser {
  let shared = parsers.get(protocolVersion);
  if (!shared) {
    const parser = mqttPacket.parser({ protocolVersion });
    const entry: SharedParser = { parser, packet: null, error: null };
    parser.on('packet', (packet: Packet) => { entry.packet = packet; });
    parser.on('error', (error: Error) => { entry.error = error; });
    parsers.set(protocolVersion, entry);
    shared = entry;
  }
  return shared;
}

/** The packet in `frame`; throws FrameError (reason 0x81 Malformed Packet) when it does not parse. */
export function decodePacket(frame: Buffer, protocolVersion: number): Packet {
  if (frame.length === 2 && frame[1] === 0) {
    // Bodiless DISCONNECT and PINGREQ (one of each per connection, or per keep alive) skip the parser.
    // A v5 DISCONNECT without a body means reason 0x00 (MQTT 5.0 §3.14.2.1).
    if (frame[0] === 0xe0) return protocolVersion === 5 ? { cmd: 'disconnect', reasonCode: 0, length: 0 } : { cmd: 'disconnect', length: 0 };
    if (frame[0] === 0xc0) return { cmd: 'pingreq', length: 0 };
  }
  if (frame[0] === 0x10) {
    const connect = decodeSimpleConnect(frame);
    if (connect !== null) return connect;
  }
  const shared = parserFor(protocolVersion);
  const settings = (shared.parser as unknown as { settings: { protocolVersion?: number } });
  // A CONNECT replaces the parser's settings with the packet itself: put ours back.
  if (settings.settings.protocolVersion !== protocolVersion) settings.settings = { protocolVersion };
  shared.packet = null;
  shared.error = null;
  shared.parser.parse(frame);
  const packet = shared.packet as Packet | null;
  const error = shared.error as Error | null;
  shared.packet = null;
  shared.error = null;
  if (error || !packet) {
    // mqtt-packet does not fully recover from an error: leave no state behind for the next frame.
    parsers.delete(protocolVersion);
    throw new FrameError(error?.message ?? 'incomplete packet', 0x81);
  }
  return packet;
}
