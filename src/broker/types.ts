// The broker's public contract: what embedders, device adapters and the bridge rely on.
// Keep it small and stable.

export type QoS = 0 | 1 | 2;

/** MQTT 5 publish properties that travel with an application message. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  /** Seconds; on delivery the broker forwards the remaining lifetime. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

/** An application message as it moves through the broker. Treat as immutable. */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: MessageProperties;
  /** Epoch ms after which the message must not be delivered (from messageExpiryInterval). */
  expiresAt?: number;
  /** Client id of the publisher (socket or in-process client); used for no-local. */
  origin?: string;
  /**
   * No publisher waits for this message to be stored (QoS 0, or a reading of the gateway's own devices):
   * the bridge may keep it in memory until the cloud acknowledges it, and a retained value is written
   * to SQLite coalesced, at most once per interval. Everything else is stored before it is acknowledged.
   */
  holdable?: boolean;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  properties?: MessageProperties;
  /**
   * Nobody waits for this message to be durable (device readings): see Message.holdable. Default: true
   * for QoS 0, false otherwise. The returned promise then resolves without waiting for a commit.
   */
  holdable?: boolean;
}

export interface SubscribeOptions {
  /** Maximum QoS at which the handler wants messages (default 0). Informational for in-process clients. */
  qos?: QoS;
  /** Do not deliver messages this client published itself. */
  noLocal?: boolean;
  /**
   * When true the handler runs inside the broker's group-commit transaction, on the same
   * SQLite connection as `broker.db`: writes it makes with that connection commit together
   * with the broker's own rows, and a QoS 1/2 publisher is acknowledged only after that commit.
   * The bridge outbox uses this. The handler must be synchronous and must not throw on purpose.
   */
  durable?: boolean;
  /**
   * With `durable`: holdable messages (Message.holdable) go to this handler instead, at once and outside
   * any transaction, so that they can wait in memory rather than be written first (the bridge's hold stage).
   */
  onHoldable?: MessageHandler;
}

export type MessageHandler = (message: Message) => void;

/**
 * A client that lives inside the gateway process (device adapters, the bridge). It takes part in
 * routing, retained messages and the denial hook exactly as a socket client does, without a socket.
 */
export interface LocalClient {
  readonly id: string;
  /** Resolves once the message is routed and, for QoS 1/2, durably stored where persistent sessions need it. */
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void>;
  /** Retained messages matching the filter are delivered to the handler right away (asynchronously). */
  subscribe(filter: string, handler: MessageHandler, options?: SubscribeOptions): void;
  unsubscribe(filter: string): void;
  /** Removes all of this client's subscriptions. */
  close(): void;
}

/** Who is asking, for the denial hook. */
export interface ClientIdentity {
  clientId: string;
  username?: string;
  /** Remote address for socket clients; 'local' for in-process clients. */
  address: string;
  local: boolean;
}

/**
 * Authorization hook: return true to allow. Called for every PUBLISH (action 'publish') and every
 * subscription filter (action 'subscribe'). A subscription may also be answered 'filter': granted,
 * but each message it would carry is checked at delivery (action 'read', with the message's topic;
 * the broker caches the answer per client and topic until `broker.refreshReadAccess()`).
 */
export type AuthorizeHook = {
  // Method syntax keeps hooks written before 'read' existed (action: 'publish' | 'subscribe') assignable.
  hook(client: ClientIdentity, action: 'publish' | 'subscribe' | 'read', topic: string): boolean | 'filter';
}['hook'];

/**
 * Authentication hook, called on CONNECT. Return true to accept; false answers
 * "bad user name or password" (3.1.1: 0x04, v5: 0x86).
 */
export type AuthenticateHook = (info: { clientId: string; username?: string; password?: Buffer; address: string; certificateUser?: string }) => boolean;
