import type { Message, QoS } from './types.js';

/** One message on its way to one session: queued, in flight, or (QoS 2) released. */
export interface Delivery {
  /** Row id in the session queue table; 0 for sessions that are not persisted. */
  seq: number;
  message: Message;
  qos: QoS;
  /** The RETAIN flag this copy carries. */
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** 0 until first sent. */
  packetId: number;
  /** QoS 2: PUBREC received, PUBREL sent; waiting for PUBCOMP. */
  released: boolean;
  /** Its queue row is committed (a change before that is written by the pending insert itself). */
  persisted?: boolean;
  /** Set when the message came through a shared subscription (`group\u0000filter`). */
  shareKey?: string;
}
