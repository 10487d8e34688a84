// Request/response over the broker, as Zigbee2MQTT's bridge/request → bridge/response: a request on
// fieldgate/<id>/request/<action> is answered on its v5 Response Topic (Correlation Data echoed), or
// else on fieldgate/<id>/response/<action> (with the request's `transaction` echoed).
//
// Authorisation is the broker's: a request the requester may not publish never reaches this client
// (the ACL refuses it at the PUBLISH), and an answer goes only to a topic the requester may read —
// otherwise nothing is done and nothing is answered.
import type { Broker } from '../broker/broker.js';
import type { ClientIdentity, LocalClient, Message, MessageProperties } from '../broker/types.js';
import type { Logger } from '../log.js';
import { createHandlers, type ActionResult, type ManagementSources } from './actions.js';
import { ACTIONS, isAction, parseRequest, requestError, requestTransaction, type RequestError } from './requests.js';
import type { ManagementTopics } from './topics.js';

export interface Answer {
  status: 'ok' | 'error';
  data?: unknown;
  /** One line for a person (errors only). */
  error?: string;
  errors?: RequestError[];
  transaction?: string | number;
}

export class ManagementServer {
  private readonly handlers: ReturnType<typeof createHandlers>;
  private readonly client: LocalClient;
  requestsHandled = 0;
  private stopped = false;

  constructor(
    private readonly broker: Broker,
    private readonly topics: ManagementTopics,
    sources: ManagementSources,
    private readonly logger: Logger,
  ) {
    this.handlers = createHandlers(sources);
    this.client = broker.createLocalClient(`fieldgate-management-${sources.gatewayId}`);
  }

  start(): void {
    // noLocal: an answer this client publishes never comes back to it as a request.
    this.client.subscribe(this.topics.requests, (message) => this.onRequest(message), { noLocal: true });
  }

  stop(): void {
    this.stopped = true;
    this.client.close();
  }

  private onRequest(message: Message): void {
    try {
      this.handle(message);
    } catch (error) {
      this.logger.error({ err: error, topic: message.topic }, 'management request failed');
    }
  }

  private handle(message: Message): void {
    // A retained request would run again for every new subscriber (and at every restart): not a request.
    if (message.retain) return;
    const action = message.topic.slice(this.topics.requestPrefix.length);
    const requester = this.identityOf(message.origin ?? '');
    const responseTopic = message.properties?.responseTopic ?? this.topics.response(isAction(action) ? action : 'error');
    if (responseTopic.startsWith(this.topics.requestPrefix) || responseTopic === this.topics.requestPrefix.slice(0, -1)) {
      this.logger.warn({ clientId: requester.clientId, responseTopic }, 'management request with a response topic in the request namespace; ignored');
      return;
    }
    if (!this.broker.authorize(requester, 'subscribe', responseTopic)) {
      this.logger.warn({ clientId: requester.clientId, username: requester.username, action, responseTopic }, 'management request refused: the requester may not read its response topic');
      return;
    }
    const source = `request ${message.topic}`;
    const correlationData = message.properties?.correlationData;
    void this.answer(action, message.payload, source)
      .catch((error: unknown): Answer => {
        this.logger.error({ err: error, action }, 'management action failed');
        const e = requestError(source, '', `the action failed: ${(error as Error)?.message ?? String(error)}`);
        return withTransaction({ status: 'error', error: e.text, errors: [e] }, requestTransaction(message.payload));
      })
      .then((answer) => {
        if (this.stopped) return;
        this.requestsHandled++;
        const properties: MessageProperties = { contentType: 'application/json' };
        if (correlationData) properties.correlationData = correlationData;
        this.client.publish(responseTopic, JSON.stringify(answer), { qos: message.qos === 0 ? 0 : 1, properties }).catch((error: Error) => {
          this.logger.warn({ err: error, responseTopic }, 'management answer not published');
        });
      });
  }

  private async answer(action: string, payload: Buffer, source: string): Promise<Answer> {
    if (!isAction(action)) {
      const e = requestError(source, '', `unknown action ${JSON.stringify(action)} (expected one of ${ACTIONS.join(', ')})`);
      return withTransaction({ status: 'error', error: e.text, errors: [e] }, requestTransaction(payload));
    }
    const parsed = parseRequest(action, payload, source);
    if (!parsed.ok) return withTransaction({ status: 'error', error: parsed.errors.map((e) => e.text).join('; '), errors: parsed.errors }, parsed.transaction);
    const handler = this.handlers[action] as (body: unknown, source: string) => ActionResult | Promise<ActionResult>;
    const result = await handler(parsed.body, source);
    const answer: Answer = result.ok ? { status: 'ok', data: result.data } : { status: 'error', error: result.errors.map((e) => e.text).join('; '), errors: result.errors };
    return withTransaction(answer, parsed.body.transaction);
  }

  /** The requester as the ACL knows it: a socket client's identity, or an in-process client (a bridge's `in` rule). */
  private identityOf(clientId: string): ClientIdentity {
    const connection = this.broker.sessions.get(clientId)?.connection;
    return connection ? connection.identity : { clientId, address: 'local', local: true };
  }
}

function withTransaction(answer: Answer, transaction: string | number | undefined): Answer {
  return transaction === undefined ? answer : { ...answer, transaction };
}
