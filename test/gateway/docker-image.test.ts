// No Docker engine runs here, so this checks what the image would run, outside Docker: the
// Dockerfile's assumptions against the CLI and docker/fieldgate.json, then the same ENTRYPOINT + CMD
// with that config (ports and data directory moved to a temp place) and the HEALTHCHECK command.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, freePort, GatewayProcess, ROOT, runCli, tempDir, waitFor } from './helpers.js';

interface Dockerfile {
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
  env: Map<string, string>;
  /** COPY instructions of the final stage: [source, destination]. */
  copies: Array<[string, string]>;
  workdir: string;
  volumes: string[];
  expose: number[];
  user: string;
}

/** The final stage of the Dockerfile, with line continuations joined. */
function readDockerfile(): Dockerfile {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const lines = stages[stages.length - 1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const result: Dockerfile = { entrypoint: [], cmd: [], healthcheck: [], env: new Map(), copies: [], workdir: '/', volumes: [], expose: [], user: 'root' };
  for (const line of lines) {
    const [instruction, ...restWords] = line.split(/\s+/);
    const rest = line.slice(instruction.length).trim();
    switch (instruction) {
      case 'ENTRYPOINT': result.entrypoint = JSON.parse(rest) as string[]; break;
      case 'CMD': result.cmd = JSON.parse(rest) as string[]; break;
      case 'HEALTHCHECK': result.healthcheck = JSON.parse(rest.slice(rest.indexOf('CMD') + 3).trim()) as string[]; break;
      case 'ENV': for (const m of rest.matchAll(/(\w+)=(\S+)/g)) result.env.set(m[1], m[2]); break;
      case 'COPY': if (!restWords[0].startsWith('--from')) result.copies.push([restWords[0], restWords[restWords.length - 1]]); break;
      case 'WORKDIR': result.workdir = rest; break;
      case 'VOLUME': result.volumes.push(rest); break;
      case 'EXPOSE': result.expose.push(...restWords.map(Number)); break;
      case 'USER': result.user = rest; break;
    }
  }
  return result;
}

const dockerfile = readDockerfile();
const imageConfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'docker/fieldgate.json'), 'utf8')) as {
  broker: { host: string; port: number; dataDir: string };
  auth: { passwordFile: string };
  metrics: { host: string; port: number };
};

describe('the Dockerfile agrees with the CLI and docker/fieldgate.json', () => {
  it('CMD runs the config the image ships', () => {
    const configIndex = dockerfile.cmd.indexOf('--config');
    expect(dockerfile.cmd[0]).toBe('run');
    expect(configIndex).toBeGreaterThan(0);
    const configPath = dockerfile.cmd[configIndex + 1];
    expect(dockerfile.copies).toContainEqual(['docker/fieldgate.json', configPath]);
  });

  it('ENTRYPOINT is node on bin/fieldgate.js with what it needs copied next to it', () => {
    expect(dockerfile.entrypoint[0]).toBe('node');
    expect(dockerfile.entrypoint.at(-1)).toBe('bin/fieldgate.js');
    expect(dockerfile.workdir).toBe('/app');
    // bin/fieldgate.js imports ../dist/cli.js; version.ts reads ../package.json; profiles come from devices/.
    expect(fs.readFileSync(path.join(ROOT, 'bin/fieldgate.js'), 'utf8')).toContain("from '../dist/cli.js'");
    const copied = dockerfile.copies.map(([, to]) => to);
    for (const needed of ['./bin', './devices']) expect(copied).toContain(needed);
    const fromBuild = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(fromBuild).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(fromBuild).toMatch(/COPY --from=build \/app\/package\.json/);
    expect(dockerfile.user).toBe('fieldgate');
  });

  it('the config listens where -p reaches, keeps data on the volume and serves the health check the image polls', () => {
    expect(imageConfig.broker.host).toBe('0.0.0.0');
    expect(dockerfile.volumes).toContain(imageConfig.broker.dataDir);
    expect(dockerfile.expose).toContain(imageConfig.broker.port);
    const health = new URL(dockerfile.env.get('FIELDGATE_HEALTHCHECK_URL')!);
    expect(health.pathname).toBe('/healthz');
    expect(Number(health.port)).toBe(imageConfig.metrics.port);
    expect(['0.0.0.0', '127.0.0.1']).toContain(imageConfig.metrics.host);
    expect(dockerfile.healthcheck.join(' ')).toContain('FIELDGATE_HEALTHCHECK_URL');
  });
});

describe('what the image runs, outside Docker', () => {
  let dir: string;
  let etc: string;
  let mqttPort: number;
  let metricsPort: number;
  let gateway: GatewayProcess | undefined;

  /** docker/fieldgate.json as the image has it, with free ports and a temp data directory. */
  function writeConfig(): string {
    const config = structuredClone(imageConfig);
    config.broker.port = mqttPort;
    config.broker.dataDir = path.join(dir, 'data');
    config.metrics.port = metricsPort;
    const file = path.join(etc, 'fieldgate.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  }
  const entrypointWith = (configFile: string) => {
    const cmd = dockerfile.cmd.map((arg, i) => (dockerfile.cmd[i - 1] === '--config' ? configFile : arg));
    return [...dockerfile.entrypoint.slice(1), ...cmd];
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-image-');
    etc = path.join(dir, 'etc-fieldgate');
    fs.mkdirSync(etc);
    mqttPort = await freePort();
    metricsPort = await freePort();
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('without the password file it stops at once and says which file is missing', async () => {
    const failed = new GatewayProcess([], ROOT, entrypointWith(writeConfig()));
    const { code } = await failed.exited;
    expect(code).toBe(1);
    expect(failed.rawOutput.join('\n')).toMatch(/auth\.passwordFile: .*passwd.*ENOENT/);
  });

  it('with one it serves MQTT to users, refuses anonymous clients, and passes the HEALTHCHECK', async () => {
    expect((await runCli(['passwd', '-b', path.join(etc, 'passwd'), 'alice', 'alice-pw'])).code).toBe(0);
    gateway = new GatewayProcess([], ROOT, entrypointWith(writeConfig()));
    await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the gateway to start (listeners open last)');
    expect(gateway.logs.map((l) => l.msg)).toContain(`MQTT broker listening on mqtt://0.0.0.0:${mqttPort}`);
    // Bound to 0.0.0.0, reached on 127.0.0.1, with credentials since anonymous clients are refused there.
    expect(gateway.logs.map((l) => l.msg)).toContain(`watch the readings: mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -u USER -P PASSWORD -t 'fieldgate/demo-meter/#' -v`);

    const [command, ...args] = dockerfile.healthcheck;
    expect(command).toBe('node');
    const healthcheck = () => new Promise<number>((resolve) => {
      const env = { ...process.env, FIELDGATE_HEALTHCHECK_URL: `http://127.0.0.1:${metricsPort}/healthz` };
      execFile(process.execPath, args, { env, timeout: 10_000 }, (error) => resolve(error ? (error as { code?: number }).code ?? 1 : 0));
    });
    expect(await healthcheck()).toBe(0);

    const refused = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, reconnectPeriod: 0 }).then(() => 'accepted', (e: Error) => e.message);
    expect(refused).toMatch(/Not authorized/);
    const alice = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, username: 'alice', password: 'alice-pw', reconnectPeriod: 0 });
    const seen: string[] = [];
    alice.on('message', (topic) => seen.push(topic));
    await alice.subscribeAsync('fieldgate/#');
    await waitFor(() => seen.includes('fieldgate/demo-meter/power'), 'demo readings');
    await alice.endAsync();

    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(path.join(dir, 'data', 'fieldgate.db'))).toBe(true);
    // Stopped: the health check now fails, as Docker would see it.
    expect(await healthcheck()).not.toBe(0);
  });
});
