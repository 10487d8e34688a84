// The web console (src/console/): started last, once the listeners are open and the management API
// answers, and stopped first, so a browser never sees a half-started or half-stopped gateway.
import type { Broker } from '../broker/broker.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { isLoopback } from '../listeners.js';
import type { Logger } from '../log.js';
import { defaultAssetsDir } from '../console/assets.js';
import { startConsoleServer, type ConsoleServer } from '../console/server.js';
import type { Part } from './part.js';

/** A login is needed unless the console is on a loopback address and auth is "auto". */
export function consoleLoginRequired(config: GatewayConfig): boolean {
  return config.console.auth === 'required' || !isLoopback(config.console.host);
}

export class ConsolePart implements Part {
  readonly name = 'console';
  server: ConsoleServer | null = null;
  private failure: string | undefined;
  private readonly log: Logger;

  constructor(private readonly config: GatewayConfig, private readonly broker: Broker, logger: Logger, private readonly gatewayId: string, private readonly assetsDir = defaultAssetsDir()) {
    this.log = logger.child({ part: 'console' });
  }

  async start(): Promise<void> {
    const { config, broker } = this;
    if (!config.console.enabled) return;
    const loginRequired = consoleLoginRequired(config);
    const authenticate = broker.options.authenticate;
    try {
      this.server = await startConsoleServer({
        broker, host: config.console.host, port: config.console.port, loginRequired, gatewayId: this.gatewayId,
        assetsDir: this.assetsDir, logger: this.log,
        checkPassword: config.auth.passwordFile !== undefined && authenticate
          ? (user, password, address) => authenticate({ clientId: 'fieldgate-console-login', username: user, password: Buffer.from(password, 'utf8'), address }) === true
          : undefined,
      });
    } catch (error) {
      // The console is a window on the gateway, not part of its data path: a busy port (a second
      // gateway on this machine) leaves the broker, the devices and the bridges running.
      this.failure = (error as Error).message;
      this.log.error(`${this.failure}; the gateway runs without its console`);
      return;
    }
    const { url, built, assetBytesGzipped } = this.server;
    this.log.info({ url, loginRequired, assetBytesGzipped }, `web console on ${url}${loginRequired ? ' (login: a user of the password file)' : ''}`);
    if (!built) this.log.warn('the web console was not built (dist/console-ui is missing): run `npm run build`');
    if (loginRequired && config.auth.passwordFile === undefined) this.log.warn('the web console needs a login here but there is no auth.passwordFile: nobody can log in');
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = null;
  }

  status() {
    if (!this.config.console.enabled) return { state: 'stopped' as const, detail: 'console off in the config' };
    if (!this.server) return this.failure ? { state: 'degraded' as const, detail: `not serving: ${this.failure}` } : { state: 'stopped' as const, detail: 'not serving' };
    const browsers = this.server.browsers();
    return {
      state: this.server.built ? 'running' as const : 'degraded' as const,
      detail: `${this.server.url}${this.server.built ? '' : ' (not built: run npm run build)'}, ${browsers} browser${browsers === 1 ? '' : 's'} connected`,
    };
  }
}
