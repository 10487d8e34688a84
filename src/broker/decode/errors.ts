// What a decoder throws when a client's packet breaks a rule: the reason code the client is told
// (v5 DISCONNECT, or CONNACK when the CONNECT itself is refused) and why, for the log.

export const MALFORMED_PACKET = 0x81;
export const PROTOCOL_ERROR = 0x82;

export interface ConnackRefusal {
  /** The form the CONNACK takes: 4 (3.1/3.1.1 return code) or 5 (reason code). */
  protocolVersion: 4 | 5;
  code: number;
}

export class FrameError extends Error {
  constructor(
    message: string,
    readonly reasonCode: number,
    /** Set when the packet was a CONNECT that is answered with a refusing CONNACK before the close. */
    readonly connack?: ConnackRefusal,
  ) {
    super(message);
  }
}

export function malformed(message: string): FrameError {
  return new FrameError(message, MALFORMED_PACKET);
}

export function protocolViolation(message: string, reasonCode = PROTOCOL_ERROR): FrameError {
  return new FrameError(message, reasonCode);
}
